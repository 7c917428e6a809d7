// Recipe graphql-request: graphql-request's GraphQLClient sending its queries as GET, with the bearer token
// from a headers function (graphql-request calls it for every request). The edge serves such a GET without
// a CSRF header because it carries a bearer token. graphql-request asks for
// application/graphql-response+json first, so a bad token is a 401 in that media type, which it throws as
// a ClientError holding the GraphQL errors (extensions.code "invalid-jwt").
//
// Usage: node graphql-request.mjs '<json>' with harness.mjs's input and {query}. Prints the harness's record
// and the result's data and error.
import { errorCodes, finish, getToken, GRAPHQL_URL, input } from "./harness.mjs";

// recipe: graphql-request
import { ClientError, GraphQLClient } from "graphql-request";

const client = new GraphQLClient(GRAPHQL_URL, {
  method: "GET",
  headers: () => ({ Authorization: `Bearer ${getToken()}` }),
});

// True when the edge (like Hasura) refused the token: sign in again rather than retry with it.
function isInvalidJwt(error) {
  return error instanceof ClientError && error.response.errors?.some((e) => e.extensions?.code === "invalid-jwt");
}
// end recipe

try {
  finish({ data: await client.request(input.query), error: null });
} catch (error) {
  finish({
    data: null,
    error: {
      name: error.constructor.name, // ClientError leaves error.name as "Error"
      invalidJwt: isInvalidJwt(error),
      graphQLCodes: error instanceof ClientError ? errorCodes(error.response.errors) : null,
      status: error instanceof ClientError ? error.response.status : null,
    },
  });
}
