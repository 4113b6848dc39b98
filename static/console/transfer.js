// Import & export (console/transfer.py). Two enhancements, both optional (the pages work without
// scripts: the form posts and redirects, the job page refreshes itself):
// - the import form is sent with XMLHttpRequest, to show the upload's progress, then follows the
//   server to the job page (or shows the form it answered with errors);
// - the job page polls its status (JSON) every half second until the import ends, then reloads
//   to show the result the server rendered.
// Data is only ever set as text (textContent, attributes), never parsed as HTML from strings.
"use strict";

(function () {
  var POLL_MS = 500;

  function enhanceForm(form) {
    var box = form.querySelector(".upload-progress");
    var bar = form.querySelector("#upload-progress");
    var status = form.querySelector(".upload-status");
    var button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", function (event) {
      if (!window.FormData || !window.XMLHttpRequest) return;
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      box.hidden = false;
      bar.max = 1;
      bar.value = 0;
      button.disabled = true;
      status.textContent = "Uploading…";
      var lastPercent = -1;
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        bar.max = e.total;
        bar.value = e.loaded;
        var percent = Math.floor((e.loaded / e.total) * 10) * 10;
        if (percent !== lastPercent) {
          lastPercent = percent;
          status.textContent = "Uploading: " + percent + "%";
        }
      });
      xhr.addEventListener("load", function () {
        var type = xhr.getResponseHeader("Content-Type") || "";
        if (xhr.status === 200 && type.indexOf("application/json") === 0) {
          var answer = JSON.parse(xhr.responseText);
          status.textContent = "Uploaded; opening the import.";
          window.location.assign(answer.location);
          return;
        }
        showAnswer(xhr.responseText, xhr.status);
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        box.hidden = true;
        status.textContent = "The upload failed (the connection was lost). Try again.";
      });
      xhr.send(new FormData(form));
    });
  }

  // The server answered with its page (the form with errors, or a refusal): show that page's
  // main content, parsed as a document (its scripts do not run) and moved in node by node.
  function showAnswer(html, code) {
    var answer = new DOMParser().parseFromString(html, "text/html");
    var fresh = answer.querySelector("main");
    var main = document.querySelector("main");
    if (!fresh || !main) {
      document.querySelector(".upload-status").textContent = "The upload was refused (" + code + ").";
      return;
    }
    while (main.firstChild) main.removeChild(main.firstChild);
    while (fresh.firstChild) main.appendChild(document.adoptNode(fresh.firstChild));
    document.title = answer.title;
    var form = main.querySelector("#import-form");
    if (form) enhanceForm(form);
    var invalid = main.querySelector("[aria-invalid=true]");
    (invalid || main).focus();
  }

  function followJob(section) {
    var url = section.getAttribute("data-status-url");
    var bar = section.querySelector("progress");
    var status = section.querySelector("[role=status]");
    var spoken = "";
    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (state) {
          if (state.total > 0) {
            bar.max = state.total;
            bar.value = state.done;
          } else {
            bar.removeAttribute("value"); // indeterminate: the file is still being read
          }
          // The live region speaks on a new phase or every tenth of the way, not on every poll.
          var step = state.phase + ":" + (state.total ? Math.floor((state.done / state.total) * 10) : 0);
          if (step !== spoken) {
            spoken = step;
            status.textContent = state.label;
          }
          if (state.active) {
            window.setTimeout(poll, POLL_MS);
          } else {
            window.location.reload();
          }
        })
        .catch(function () {
          window.setTimeout(poll, POLL_MS * 4); // the server restarting: try again, more slowly
        });
    }
    window.setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("import-form");
    if (form) enhanceForm(form);
    var job = document.querySelector("[data-status-url]");
    if (job) followJob(job);
  });
})();
