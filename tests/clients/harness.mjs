// Test plumbing for the recipe scripts (never part of a recipe). Each script imports this module first, so
// that what it installs exists before any client library loads (subscriptions-transport-ws reads
// globalThis.WebSocket when it is imported). It provides what a recipe takes from the application:
// GRAPHQL_URL, WS_URL, getToken() and refreshToken(), and it records what the edge was sent and answered.
//
// Input: one JSON object in argv[2]: {graphqlUrl?, wsUrl?, token, freshToken?, accept?, ...script's own}.
// getToken() returns the current token; refreshToken() replaces it with freshToken (when given) and
// returns it. `accept` replaces the Accept header of every fetch. Output: finish() prints one JSON object:
// what the script adds, plus `responses` (every HTTP response: status, content type), `requests` (every
// HTTP request: method, path, its request headers' names), `sockets` (the WebSocket connections opened:
// subprotocols asked, close code and reason) and `refreshes` (how many times refreshToken() was called).
import WebSocketImpl from "ws";

export const input = JSON.parse(process.argv[2] ?? "{}");
export const GRAPHQL_URL = input.graphqlUrl;
export const WS_URL = input.wsUrl;

const seen = { responses: [], requests: [], sockets: [], refreshes: 0 };
let token = input.token;

export function getToken() {
  return token;
}

export async function refreshToken() {
  seen.refreshes += 1;
  if (input.freshToken) token = input.freshToken;
  return token;
}

const realFetch = globalThis.fetch;
globalThis.fetch = async (resource, options = {}) => {
  const headers = new Headers(options.headers);
  if (input.accept) headers.set("accept", input.accept);
  const url = new URL(typeof resource === "string" || resource instanceof URL ? resource : resource.url);
  seen.requests.push({ method: options.method ?? "GET", path: url.pathname, headers: [...headers.keys()].sort() });
  const response = await realFetch(resource, { ...options, headers });
  seen.responses.push({ status: response.status, contentType: response.headers.get("content-type") });
  return response;
};

globalThis.WebSocket = class CountingWebSocket extends WebSocketImpl {
  constructor(url, protocols, ...rest) {
    super(url, protocols, ...rest);
    const socket = { protocols: [protocols ?? []].flat(), close: null };
    seen.sockets.push(socket);
    this.addEventListener("close", (event) => {
      socket.close = { code: event.code, reason: event.reason };
    });
  }
};

// Prints the outcome and ends the process (open sockets and retry timers would otherwise keep it alive).
export function finish(outcome = {}) {
  console.log(JSON.stringify({ ...seen, ...outcome }));
  process.exit(0);
}

// A safety net only: the tests wait for the outcome, never for this.
setTimeout(() => finish({ timedOut: true }), input.timeoutMs ?? 30000);

// What a script reports of an error: its name, and the codes of its GraphQL errors, if any.
export function errorCodes(errors) {
  return (errors ?? []).map((e) => e.extensions?.code ?? null);
}
