// Recipe subscriptions-transport-ws: the legacy client (Apollo's subscriptions-transport-ws, the graphql-ws
// subprotocol Hasura also speaks). The edge refuses a token with {"type":"connection_error","payload":
// "<message>"} and then closes 4400; subscriptions-transport-ws hands the payload to connectionCallback and,
// with reconnect: true, would connect again with backoff (reconnectionAttempts: Infinity by default) on the
// close. The recipe closes the client in connectionCallback instead, so a refused token stops it.
//
// The recipe relies on a global WebSocket (browsers); on Node pass the ws package's WebSocket as the
// third constructor argument. harness.mjs (imported first: this library reads the global when it loads)
// installs ws as the global, counting connections.
//
// Usage: node subscriptions-transport-ws.mjs '<json>' with harness.mjs's input and {subscription, results,
// settleMs}. Prints the harness's record, the results, what the recipe logged, and the subscription's
// error; after a refused token, waits settleMs to see whether the client connects again.
import { finish, getToken, input, WS_URL } from "./harness.mjs";

// What the recipe logs (its connectionCallback reports a refused token with console.error).
const logged = [];
console.error = (...args) => logged.push(args.map(String).join(" "));

// recipe: subscriptions-transport-ws
import { SubscriptionClient } from "subscriptions-transport-ws";

const client = new SubscriptionClient(WS_URL, {
  reconnect: true,
  connectionParams: async () => ({ headers: { Authorization: `Bearer ${await getToken()}` } }),
  connectionCallback: (error) => {
    if (error) {
      // connection_error: the edge refused the token. Stop reconnecting with it.
      client.close();
      console.error(`The edge refused the token: ${error}`);
    }
  },
});
// end recipe

const results = [];
const outcome = await new Promise((resolve) => {
  const subscription = client.request({ query: input.subscription }).subscribe({
    next: (result) => {
      results.push(result);
      if (results.length === input.results) {
        subscription.unsubscribe();
        resolve({ error: null });
      }
    },
    error: (error) => resolve({ error: String(error?.message ?? error) }),
    complete: () => resolve({ error: "completed" }),
  });
  const waitForRefusal = setInterval(() => {
    if (logged.length > 0) {
      clearInterval(waitForRefusal);
      setTimeout(() => resolve({ error: null }), input.settleMs ?? 0);
    }
  }, 50);
});
client.close();
finish({ results, logged, ...outcome });
