// Apollo Client 4 against the edge, with the token-refresh error link Hasura users write: a GraphQL error
// whose extensions.code is "invalid-jwt" makes the link take a fresh token and retry the operation.
//
// Usage: node apollo.mjs '<json>' with {url, token, freshToken?, accept?, query}. `accept` replaces
// HttpLink's default Accept header (Apollo Client 4 sends application/graphql-response+json first).
// Prints one JSON object: what the link saw, every HTTP response, and the query's outcome.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { CombinedGraphQLErrors, ServerError } from "@apollo/client/errors";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";

const input = JSON.parse(process.argv[2]);
let token = input.token;
const linkSaw = [];
const responses = [];

const auth = new SetContextLink((prevContext) => ({
  headers: { ...prevContext.headers, authorization: `Bearer ${token}` },
}));

const refreshOnInvalidJwt = new ErrorLink(({ error, operation, forward }) => {
  if (CombinedGraphQLErrors.is(error)) {
    for (const graphQLError of error.errors) {
      linkSaw.push({ kind: "graphql", code: graphQLError.extensions?.code ?? null });
      if (graphQLError.extensions?.code === "invalid-jwt" && input.freshToken && token !== input.freshToken) {
        token = input.freshToken;
        return forward(operation);
      }
    }
  } else {
    linkSaw.push({ kind: error.name, statusCode: ServerError.is(error) ? error.statusCode : null });
  }
});

const http = new HttpLink({
  uri: input.url,
  headers: input.accept ? { accept: input.accept } : {},
  fetch: async (uri, options) => {
    const response = await fetch(uri, options);
    responses.push({ status: response.status, contentType: response.headers.get("content-type") });
    return response;
  },
});

const client = new ApolloClient({
  link: ApolloLink.from([refreshOnInvalidJwt, auth, http]),
  cache: new InMemoryCache(),
});

const outcome = { linkSaw, responses };
try {
  const result = await client.query({ query: gql(input.query), fetchPolicy: "no-cache" });
  outcome.data = result.data ?? null;
  outcome.error = result.error ? describe(result.error) : null;
} catch (error) {
  outcome.data = null;
  outcome.error = describe(error);
}
console.log(JSON.stringify(outcome));

function describe(error) {
  return {
    name: error.name,
    graphQLCodes: CombinedGraphQLErrors.is(error) ? error.errors.map((e) => e.extensions?.code ?? null) : null,
    statusCode: ServerError.is(error) ? error.statusCode : null,
  };
}
