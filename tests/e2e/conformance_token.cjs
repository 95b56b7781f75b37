// Preload (`node --require`) for the conformance runner, whose server scenarios cannot send
// a token: adds `Authorization: Bearer $CONFORMANCE_TOKEN` to every request it makes (node:http,
// fetch, and undici's request from $CONFORMANCE_NODE_PEERS), so the suite runs through the
// gateway in strict mode. Requests that already carry an Authorization header keep theirs.
"use strict";
const http = require("node:http");

const token = process.env.CONFORMANCE_TOKEN;
if (!token) throw new Error("CONFORMANCE_TOKEN is not set");
const bearer = `Bearer ${token}`;

function withToken(headers) {
  if (headers == null) return { authorization: bearer };
  if (typeof headers.has === "function") {
    if (!headers.has("authorization")) headers.set("authorization", bearer);
    return headers;
  }
  const has = Object.keys(headers).some((name) => name.toLowerCase() === "authorization");
  return has ? headers : { ...headers, authorization: bearer };
}

for (const name of ["request", "get"]) {
  const original = http[name];
  http[name] = function (url, options, callback) {
    if (typeof url === "object" && !(url instanceof URL)) {
      url = { ...url, headers: withToken(url.headers) };
    } else if (typeof options === "object" && options !== null) {
      options = { ...options, headers: withToken(options.headers) };
    } else {
      callback = options;
      options = { headers: withToken(undefined) };
    }
    return callback === undefined && typeof options !== "function"
      ? original.call(this, url, options)
      : original.call(this, url, options, callback);
  };
}

const originalFetch = globalThis.fetch;
globalThis.fetch = function (input, init) {
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  if (!headers.has("authorization")) headers.set("authorization", bearer);
  return originalFetch.call(this, input, { ...init, headers });
};

// The suite imports `request` from undici (an ESM named import of this CommonJS module): it
// reads the export after this preload has replaced it.
const undici = require(require.resolve("undici", { paths: [process.env.CONFORMANCE_NODE_PEERS] }));
const originalRequest = undici.request;
undici.request = function (url, options = {}) {
  return originalRequest.call(this, url, { ...options, headers: withToken(options.headers) });
};
