// Renders /openapi.json with Redoc and /asyncapi.json with the AsyncAPI React
// component, both served from this origin (see apidocs/VENDOR.md).
(function () {
  'use strict';
  function failed(id, what, err) {
    var el = document.getElementById(id);
    el.textContent = 'Could not render ' + what + ': ' + err;
    el.setAttribute('data-error', 'true');
  }
  try {
    Redoc.init('/openapi.json', {
      expandResponses: '200,201',
      hideDownloadButton: false,
      scrollYOffset: 48,
      theme: { typography: { fontFamily: 'system-ui, sans-serif', headings: { fontFamily: 'system-ui, sans-serif' } } },
    }, document.getElementById('redoc'), function (err) {
      if (err) failed('redoc', 'the HTTP API', err);
      else document.getElementById('redoc').setAttribute('data-rendered', 'true');
    });
  } catch (err) {
    failed('redoc', 'the HTTP API', err);
  }
  fetch('/asyncapi.json').then(function (r) {
    if (!r.ok) throw new Error('GET /asyncapi.json: ' + r.status);
    return r.json();
  }).then(function (schema) {
    AsyncApiStandalone.render({
      schema: schema,
      config: { show: { sidebar: false, errors: true }, parserOptions: { ruleset: { extends: [] } } },
    }, document.getElementById('asyncapi'));
    document.getElementById('asyncapi').setAttribute('data-rendered', 'true');
  }).catch(function (err) { failed('asyncapi', 'the sockets', err); });
})();
