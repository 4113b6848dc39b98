// Preloaded (node --import) into the MCP conformance CLI by tests/mcp_endpoint/test_conformance.py.
//
// The CLI has no option for request headers: every scenario builds its client as
// `new StreamableHTTPClientTransport(new URL(url))` or calls fetch / undici's `request` itself, and
// MemoryHub's /mcp answers 401 without an API key. All of those requests go through undici's global
// dispatcher (Node's fetch included), so this hook installs one that adds `X-API-Key` to requests
// for the server under test, and to no other origin. The server is not changed for the tests.
import { createRequire } from "node:module";

const url = process.env.CONFORMANCE_SERVER_URL;
const key = process.env.CONFORMANCE_API_KEY;
if (!url || !key) {
  throw new Error("conformance_key.mjs needs CONFORMANCE_SERVER_URL and CONFORMANCE_API_KEY");
}
const origin = new URL(url).origin;

// The conformance package's own undici (the one its `request` calls use), wherever npm placed it.
const require = createRequire(import.meta.resolve("@modelcontextprotocol/conformance/package.json"));
const { Agent, setGlobalDispatcher } = require("undici");

function withKey(headers) {
  if (headers == null) return { "x-api-key": key };
  if (Array.isArray(headers)) return [...headers, "x-api-key", key];
  if (typeof headers[Symbol.iterator] === "function") return [...[...headers].flat(), "x-api-key", key];
  return { ...headers, "x-api-key": key };
}

setGlobalDispatcher(
  new Agent().compose(
    (dispatch) => (options, handler) =>
      dispatch(
        new URL(String(options.origin)).origin === origin
          ? { ...options, headers: withKey(options.headers) }
          : options,
        handler,
      ),
  ),
);
