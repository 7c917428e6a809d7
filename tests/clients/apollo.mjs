// Recipe apollo-http: Apollo Client 4 over HTTP with the token-refresh error link Hasura users write. A
// GraphQL error whose extensions.code is "invalid-jwt" (what the edge, like Hasura, answers an expired or
// invalid token with) makes the link take a new token and retry the operation, once.
//
// Usage: node apollo.mjs '<json>' with harness.mjs's input and {query}. Prints the harness's record and
// the query's outcome (data, error).
import { errorCodes, finish, GRAPHQL_URL, getToken, input, refreshToken } from "./harness.mjs";
import { gql } from "@apollo/client";
import { ServerError } from "@apollo/client/errors";

// recipe: apollo-http
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { CombinedGraphQLErrors } from "@apollo/client/errors";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";
import { from, switchMap } from "rxjs";

const auth = new SetContextLink(async (prevContext) => ({
  headers: { ...prevContext.headers, Authorization: `Bearer ${await getToken()}` },
}));

// The token expired (or was refused): get a new one and retry the operation, once.
const refreshOnInvalidJwt = new ErrorLink(({ error, operation, forward }) => {
  const invalidJwt =
    CombinedGraphQLErrors.is(error) && error.errors.some((e) => e.extensions?.code === "invalid-jwt");
  if (invalidJwt && !operation.getContext().retriedWithNewToken) {
    operation.setContext({ retriedWithNewToken: true });
    return from(refreshToken()).pipe(switchMap(() => forward(operation)));
  }
});

const client = new ApolloClient({
  link: ApolloLink.from([refreshOnInvalidJwt, auth, new HttpLink({ uri: GRAPHQL_URL })]),
  cache: new InMemoryCache(),
});
// end recipe

function describe(error) {
  return {
    name: error.name,
    graphQLCodes: CombinedGraphQLErrors.is(error) ? errorCodes(error.errors) : null,
    statusCode: ServerError.is(error) ? error.statusCode : null,
  };
}

try {
  const result = await client.query({ query: gql(input.query), fetchPolicy: "no-cache" });
  finish({ data: result.data ?? null, error: result.error ? describe(result.error) : null });
} catch (error) {
  finish({ data: null, error: describe(error) });
}
