// Starts Swagger UI on the API's OpenAPI document. A file of its own, not an inline script:
// the Content-Security-Policy of every page allows scripts from this origin only.
"use strict";

(function () {
  var here = window.location.href;
  window.ui = SwaggerUIBundle({
    url: new URL("../openapi.json", here).href,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // The default would fetch a badge from an online validator: the explorer works offline.
    validatorUrl: null,
    // The token only lives as long as the page: nothing is kept in the browser's storage.
    persistAuthorization: false,
    tryItOutEnabled: true,
  });
})();
