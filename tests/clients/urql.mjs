// Recipe urql: urql (@urql/core) with the bearer token in fetchOptions. urql sends a query that fits in a
// URL as a GET by default (preferGetMethod "within-url-limit"); the edge serves such a GET without a CSRF
// header because it carries a bearer token. A bad token reaches urql as a CombinedError whose
// graphQLErrors[0].extensions.code is "invalid-jwt".
//
// Usage: node urql.mjs '<json>' with harness.mjs's input and {query, preferGetMethod?} (preferGetMethod is
// urql's per-operation option of that name). Prints the harness's record and the result's data and error.
import { errorCodes, finish, getToken, GRAPHQL_URL, input } from "./harness.mjs";
import { gql } from "@urql/core";

// recipe: urql
import { Client, fetchExchange } from "@urql/core";

const client = new Client({
  url: GRAPHQL_URL,
  exchanges: [fetchExchange],
  // fetchOptions is synchronous: getToken() must return the token itself here, not a promise.
  fetchOptions: () => ({ headers: { Authorization: `Bearer ${getToken()}` } }),
});
// end recipe

const context = "preferGetMethod" in input ? { preferGetMethod: input.preferGetMethod } : {};
const result = await client.query(gql(input.query), {}, context).toPromise();
const error = result.error;
finish({
  data: result.data ?? null,
  error: error
    ? {
        name: error.name,
        graphQLCodes: errorCodes(error.graphQLErrors),
        graphQLMessages: error.graphQLErrors.map((e) => e.message),
        networkError: error.networkError ? error.networkError.message : null,
        status: error.response?.status ?? null,
      }
    : null,
});
