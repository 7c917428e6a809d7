// Recipe graphql-ws-fail-fast: a graphql-ws client (the graphql-transport-ws subprotocol) that gives up at
// once when the edge refuses the token. The edge refuses a token by closing the socket with 4403
// (reason {"server_error_msg":"4403: Forbidden"}), and one that expires on a live connection with 4403
// "Credentials expired" (docs/subscriptions.md).
//
// graphql-ws 6.4.2 (node_modules/graphql-ws/dist/client.js, shouldRetryConnectOrThrow) retries 4403 by
// default: its list of fatal close codes leaves Forbidden out ("might grant access after retry"), and its
// default shouldRetry retries any close event, up to retryAttempts (5) with randomised exponential backoff
// (2^n s plus 0.3 to 3 s). With a refused token that is 6 connections over about half a minute before
// the subscription hears of it. The shouldRetry below makes 4403 final.
//
// The recipe relies on a global WebSocket (browsers; Node 22+). On Node 20 pass `webSocketImpl` (the ws
// package); here harness.mjs installs ws as the global, counting connections.
//
// Usage: node graphql-ws-fail-fast.mjs '<json>' with harness.mjs's input and {subscription, results}.
// Prints the harness's record, the results received and the error the subscription ended with.
import { finish, getToken, input, WS_URL } from "./harness.mjs";

// recipe: graphql-ws-fail-fast
import { createClient } from "graphql-ws";

const client = createClient({
  url: WS_URL,
  connectionParams: async () => ({ headers: { Authorization: `Bearer ${await getToken()}` } }),
  // 4403: the edge refused the token. Retrying with the same token cannot succeed.
  shouldRetry: (closeEvent) => closeEvent?.code !== 4403,
});

// Resolves when the subscription completes; rejects with the socket's CloseEvent when it closes:
// error.code === 4403 means "sign in again".
function subscribe(query, onResult) {
  return new Promise((resolve, reject) => {
    client.subscribe({ query }, { next: onResult, error: reject, complete: resolve });
  });
}
// end recipe

const results = [];
let error = null;
try {
  await new Promise((resolve, reject) => {
    subscribe(input.subscription, (result) => {
      results.push(result);
      if (results.length === input.results) resolve();
    }).then(resolve, reject);
  });
} catch (caught) {
  error = { code: caught?.code ?? null, reason: caught?.reason ?? null, message: caught?.message ?? null };
}
await client.dispose();
finish({ results, error });
