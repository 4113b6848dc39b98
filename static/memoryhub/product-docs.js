// Starts Swagger UI on /product/docs (a static file, not an inline script: the pages' CSP allows no inline code).
"use strict";

const settings = JSON.parse(document.getElementById("swagger-settings").textContent);
SwaggerUIBundle({
  ...settings,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
});
