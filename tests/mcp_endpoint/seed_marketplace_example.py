# The marketplace seed's "Python 示例", verbatim but for the two lines marked "changed": the host
# and the key come from the test that runs it (test_marketplace.py).
import os  # changed: added, to read the host and key

import requests
import json
API_KEY = os.environ["SEED_API_KEY"]  # changed: was "YOUR_API_KEY"
BASE_URL = os.environ["SEED_BASE_URL"]  # changed: was "https://hub.momoai.pro/api/mcp"
headers = {
"Content-Type": "application/json",
"x-momoai-key": API_KEY
}
def mcp_request(method, params=None):
    payload = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": method,
    "params": params or {}
    }
    response = requests.post(
    f"{BASE_URL}/messages",
    headers=headers,
    json=payload
    )
    return response.json()
# 1. 初始化
print("=== 初始化 ===")
result = mcp_request("initialize")
print(json.dumps(result, indent=2, ensure_ascii=False))
# 2. 获取工具列表
print("\n=== 工具列表 ===")
result = mcp_request("tools/list")
for tool in result["result"]["tools"]:
    print(f"- {tool['name']}")
# 3. 搜索智能体
print("\n=== 搜索智能体 ===")
result = mcp_request("tools/call", {
"name": "search_momo_agents",
"arguments": {"query": "编程"}
})
print(json.dumps(result, indent=2, ensure_ascii=False))
# 4. 调用智能体
print("\n=== 调用智能体 ===")
result = mcp_request("tools/call", {
"name": "momo_agent_58",
"arguments": {"prompt": "你好,请做个自我介绍"}
})
print(result["result"]["content"][0]["text"])
