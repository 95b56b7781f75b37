// A client on the TypeScript SDK (@modelcontextprotocol/sdk 1.32.2, a handshake-era client)
// against the gateway. Prints one JSON object: the tool names it sees and each call's outcome.
// Usage: node ts_client.mjs NODE_PEERS_DIR URL TOKEN TOOL[:ARG=VALUE,...] ...
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [peers, url, token, ...calls] = process.argv.slice(2);
const sdk = (p) => import(pathToFileURL(join(peers, "node_modules/@modelcontextprotocol/sdk/dist/esm", p)).href);
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "e2e-ts", version: "0" });
const timer = setTimeout(() => { console.error("timed out"); process.exit(2); }, 60000);
await client.connect(transport);
const out = { tools: (await client.listTools()).tools.map((t) => t.name).sort(), calls: {} };
for (const spec of calls) {
  const [name, rest = ""] = spec.split(/:(.*)/s);
  const args = Object.fromEntries(rest.split(",").filter(Boolean).map((p) => p.split(/=(.*)/s).slice(0, 2)));
  try {
    const result = await client.callTool({ name, arguments: args });
    out.calls[spec] = { ok: !result.isError, text: result.content?.[0]?.text ?? "" };
  } catch (error) {
    out.calls[spec] = { code: error.code, message: error.message };
  }
}
await client.close();
clearTimeout(timer);
console.log(JSON.stringify(out));
