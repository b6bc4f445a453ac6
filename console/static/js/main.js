// Chooses the page from the path: /join/{code} (student phone view),
// /replay/… (analyst replay), anything else the instructor console.
import { html, render } from './ui.js';
import { StudentApp } from './student.js';
import { InstructorApp } from './instructor.js';
import { ReplayApp } from './replay.js';

// Kept for the browser tests (and anyone debugging): what the CSP blocked.
document.addEventListener('securitypolicyviolation', (e) => {
  (window.__cspViolations = window.__cspViolations || []).push(`${e.violatedDirective} ${e.blockedURI}`);
});

const path = location.pathname;
const root = document.getElementById('app');
root.textContent = '';
let m;
if ((m = path.match(/^\/join\/([^/]+)\/?$/))) {
  document.body.classList.add('student');
  render(html`<${StudentApp} code=${decodeURIComponent(m[1])} />`, root);
} else if ((m = path.match(/^\/replay(?:\/(\d+))?\/?$/))) {
  render(html`<${ReplayApp} sessionId=${m[1] ? Number(m[1]) : null} />`, root);
} else {
  render(html`<${InstructorApp} />`, root);
}
