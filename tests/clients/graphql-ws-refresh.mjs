// Recipe graphql-ws-refresh: a graphql-ws client that, when the edge closes with 4403 (token refused, or
// expired on a live connection: docs/subscriptions.md), takes a new token and connects again.
// connectionParams is an async function, so graphql-ws asks for it again on every connection; graphql-ws
// retries a 4403 close by default (see graphql-ws-fail-fast.mjs), up to 5 times with backoff, and
// resubscribes the active subscriptions once connected.
//
// Usage: node graphql-ws-refresh.mjs '<json>' with harness.mjs's input and {subscription, results}.
// Prints the harness's record, the results received and the error, if any.
import { finish, input, getToken, refreshToken, WS_URL } from "./harness.mjs";

// recipe: graphql-ws-refresh
import { createClient } from "graphql-ws";

let tokenRefused = false;
const client = createClient({
  url: WS_URL,
  connectionParams: async () => {
    const token = tokenRefused ? await refreshToken() : await getToken();
    tokenRefused = false;
    return { headers: { Authorization: `Bearer ${token}` } };
  },
  on: {
    // 4403: the token was refused or expired. The next connection attempt takes a new one.
    closed: (closeEvent) => {
      tokenRefused = closeEvent?.code === 4403;
    },
  },
});
// end recipe

const results = [];
let error = null;
try {
  await new Promise((resolve, reject) => {
    client.subscribe(
      { query: input.subscription },
      {
        next: (result) => {
          results.push(result);
          if (results.length === input.results) resolve();
        },
        error: reject,
        complete: resolve,
      },
    );
  });
} catch (caught) {
  error = { code: caught?.code ?? null, reason: caught?.reason ?? null, message: caught?.message ?? null };
}
await client.dispose();
finish({ results, error });
