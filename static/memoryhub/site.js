// Progressive enhancement for the self-service pages; everything works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons stay hidden without JavaScript (the text can still be selected by hand).
  for (const button of document.querySelectorAll("button[data-copy-target]")) button.hidden = false;
  // Move focus to a panel that just appeared (the new key), so screen readers announce it.
  document.querySelector("[data-focus-on-load]")?.focus();
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy-target]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  const status = document.getElementById(button.dataset.copyStatus);
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    status.textContent = "Copied to the clipboard.";
  } catch {
    // No clipboard access (an insecure origin, a denied permission): select the text instead.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status.textContent = "Could not copy automatically. The key is selected: press Ctrl+C (⌘C on a Mac).";
  }
});
