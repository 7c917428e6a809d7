// urql (@urql/core) against the edge: one query, and the CombinedError urql makes of the answer.
//
// Usage: node urql.mjs '<json>' with {url, token, accept?, preferGetMethod?, query}. `accept` replaces urql's
// default Accept header (application/graphql-response+json, application/graphql+json, application/json, ...);
// `preferGetMethod` is urql's option of that name (urql sends queries that fit a URL with GET by default).
// Prints one JSON object: every HTTP response and the result's data and error.
import { Client, fetchExchange, gql } from "@urql/core";

const input = JSON.parse(process.argv[2]);
const responses = [];

const client = new Client({
  url: input.url,
  exchanges: [fetchExchange],
  requestPolicy: "network-only",
  ...("preferGetMethod" in input ? { preferGetMethod: input.preferGetMethod } : {}),
  fetchOptions: () => ({
    headers: { authorization: `Bearer ${input.token}`, ...(input.accept ? { accept: input.accept } : {}) },
  }),
  fetch: async (uri, options) => {
    const response = await fetch(uri, options);
    responses.push({ status: response.status, contentType: response.headers.get("content-type") });
    return response;
  },
});

const result = await client.query(gql(input.query), {}).toPromise();
const error = result.error;
console.log(
  JSON.stringify({
    responses,
    data: result.data ?? null,
    error: error
      ? {
          name: error.name,
          graphQLCodes: error.graphQLErrors.map((e) => e.extensions?.code ?? null),
          graphQLMessages: error.graphQLErrors.map((e) => e.message),
          networkError: error.networkError ? error.networkError.message : null,
          status: error.response?.status ?? null,
        }
      : null,
  }),
);
