// The edge's GraphiQL page (edge/graphiql, docs/graphiql.md); loaded after React, ReactDOM and GraphiQL.
//
// - The credential pasted above the editor goes with every request: as a header over HTTP
//   (Authorization: Bearer ... or X-API-Key), and in connection_init's payload.headers over WebSocket,
//   where the edge reads it. It is kept in this tab's sessionStorage only.
// - Queries and mutations are POSTed to the page's own URL (/graphql or /v1/graphql); subscriptions use
//   graphql-ws (graphql-transport-ws) on the same URL, ws: or wss: as the page.
// - The schema comes from introspection, which the caller's plan may refuse (introspection-disabled):
//   then GraphiQL gets no schema, and a notice says why, instead of an explorer that failed to load.
(function () {
  "use strict";

  var REFUSED = "Your plan does not allow introspection: the schema explorer is off; queries still run.";
  var STORAGE_KIND = "hasura-edge.graphiql.kind";
  var STORAGE_VALUE = "hasura-edge.graphiql.credential";

  var form = document.getElementById("edge-credentials");
  var kind = document.getElementById("edge-credential-kind");
  var input = document.getElementById("edge-credential");
  var clear = document.getElementById("edge-credential-clear");
  var state = document.getElementById("edge-credential-state");
  var notice = document.getElementById("edge-notice");

  var endpoint = location.origin + location.pathname;
  var subscriptionUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + location.pathname;
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  var generation = 0;

  function stored(key) {
    try {
      return window.sessionStorage.getItem(key) || "";
    } catch (error) {
      return "";
    }
  }

  function store(key, value) {
    try {
      if (value) window.sessionStorage.setItem(key, value);
      else window.sessionStorage.removeItem(key);
    } catch (error) {
      // storage disabled: the credential lasts as long as the page
    }
  }

  function credentialHeaders() {
    var value = input.value.trim();
    if (!value) return {};
    if (kind.value === "api-key") return { "X-API-Key": value };
    return { Authorization: /^bearer\s/i.test(value) ? value : "Bearer " + value };
  }

  function showNotice(text, level) {
    notice.textContent = text;
    notice.setAttribute("data-level", level);
    notice.hidden = false;
  }

  function errorsOf(answer) {
    return answer && typeof answer === "object" && Array.isArray(answer.errors) ? answer.errors : [];
  }

  function codeOf(error) {
    return error && error.extensions && typeof error.extensions.code === "string" ? error.extensions.code : null;
  }

  // A new key is a new GraphiQL (its query and tabs come back from localStorage): nothing of what the
  // previous credential fetched, or failed to fetch, stays on screen.
  function render(key, fetcher, schema) {
    var props = { key: key, fetcher: fetcher, isHeadersEditorEnabled: true, shouldPersistHeaders: false };
    if (schema !== undefined) props.schema = schema;
    root.render(React.createElement(GraphiQL, props));
  }

  // GraphiQL introspects with operationName "IntrospectionQuery" whenever it gets a new fetcher.
  function mount() {
    var current = ++generation;
    var headers = credentialHeaders();
    var base = GraphiQL.createFetcher({
      url: endpoint,
      subscriptionUrl: subscriptionUrl,
      headers: headers,
      wsConnectionParams: { headers: headers },
    });
    var refusal = null;
    var fetcher = function (params, options) {
      if (params.operationName !== "IntrospectionQuery") return base(params, options);
      if (refusal !== null) return Promise.resolve(refusal); // asked again (GraphiQL retries once): same answer
      return Promise.resolve(base(params, options)).then(function (answer) {
        var errors = errorsOf(answer);
        if (current !== generation || refusal !== null || !errors.length || (answer && answer.data)) return answer;
        if (errors.some(function (error) { return codeOf(error) === "introspection-disabled"; })) {
          refusal = answer;
          showNotice(REFUSED, "info");
          // No schema (null): GraphiQL does not introspect, its explorer says there is no schema, and
          // queries run as they are, without completion or validation in the editor.
          render(current + ":refused", fetcher, null);
        } else {
          var first = errors[0] || {};
          var code = codeOf(first);
          showNotice(
            "The schema could not be loaded: " + (first.message || "unknown error") + (code ? " (" + code + ")" : ""),
            "error"
          );
        }
        return answer;
      });
    };
    notice.hidden = true;
    var headerNames = Object.keys(headers);
    state.textContent = headerNames.length ? "sending " + headerNames[0] : "anonymous";
    render(String(current), fetcher, undefined);
  }

  kind.value = stored(STORAGE_KIND) === "api-key" ? "api-key" : "bearer";
  input.value = stored(STORAGE_VALUE);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    store(STORAGE_KIND, kind.value);
    store(STORAGE_VALUE, input.value.trim());
    mount();
  });
  clear.addEventListener("click", function () {
    input.value = "";
    store(STORAGE_VALUE, "");
    mount();
  });

  mount();
})();
