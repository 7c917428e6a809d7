// Recipe apollo-ws: Apollo Client 4 with subscriptions over the edge's WebSocket (GraphQLWsLink over a
// graphql-ws client: the graphql-transport-ws subprotocol) and everything else over HTTP (split). The token
// goes in connection_init's payload as Hasura reads it: {headers: {Authorization: "Bearer ..."}}.
//
// The recipe relies on a global WebSocket (browsers; Node 22+). On Node 20 pass graphql-ws a
// `webSocketImpl` (the ws package); here harness.mjs installs ws as the global, counting connections.
//
// Usage: node apollo-ws.mjs '<json>' with harness.mjs's input and {subscription, query, results}: takes
// `results` results of the subscription, then runs the query. Prints the harness's record, the results'
// data and the query's data.
import { finish, getToken, GRAPHQL_URL, input, WS_URL } from "./harness.mjs";
import { gql } from "@apollo/client";

// recipe: apollo-ws
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { OperationTypeNode } from "graphql";
import { createClient } from "graphql-ws";

const auth = new SetContextLink(async (prevContext) => ({
  headers: { ...prevContext.headers, Authorization: `Bearer ${await getToken()}` },
}));
const http = ApolloLink.from([auth, new HttpLink({ uri: GRAPHQL_URL })]);
const ws = new GraphQLWsLink(
  createClient({
    url: WS_URL,
    connectionParams: async () => ({ headers: { Authorization: `Bearer ${await getToken()}` } }),
  }),
);

const client = new ApolloClient({
  // Subscriptions over the WebSocket, queries and mutations over HTTP.
  link: ApolloLink.split(({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION, ws, http),
  cache: new InMemoryCache(),
});
// end recipe

const results = [];
const failed = await new Promise((resolve) => {
  const subscription = client.subscribe({ query: gql(input.subscription), fetchPolicy: "no-cache" }).subscribe({
    next: (result) => {
      results.push(result.error ? { error: result.error.message } : result.data);
      if (results.length === input.results) {
        subscription.unsubscribe();
        resolve(null);
      }
    },
    error: (error) => resolve(String(error)),
    complete: () => resolve("completed early"),
  });
});
const queried = failed ? null : await client.query({ query: gql(input.query), fetchPolicy: "no-cache" });
finish({ results, failed, queryData: queried?.data ?? null, queryError: queried?.error?.message ?? null });
