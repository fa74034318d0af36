// Package console is herald's web console: plain HTML, CSS and JavaScript
// embedded in the binary and served by the engine under /console/, with no
// build step and no server of its own.
//
// # Basics
//
// [Files] holds index.html, app.js, style.css and favicon.svg;
// [SetHeaders] writes the security headers every console answer carries.
// The page signs in with the admin token or an app's api_key, keeps it in a
// JavaScript variable only (never localStorage, sessionStorage or a cookie)
// and sends it as Authorization: Bearer on each API call. A browser
// attaches no such header to a request another site makes it send, so the
// console needs no CSRF token; reloading the page signs out.
//
// A .p12 goes up as multipart/form-data; a .p8 token key as the JSON body
// of the same route, the file read in the page (File.text) or the PEM
// pasted. The key and the password are cleared from the page once herald
// has them, and at sign-out.
//
// # Caveats
//
// The Content-Security-Policy allows only the console's own files
// (default-src 'self'): no inline script or style, no other origin. Keep it
// that way when editing the page: put code in app.js and rules in
// style.css, and build elements with textContent, never innerHTML, since
// app, user and certificate names come from API clients.
//
// The browser tests (browser_test.go) drive Debian's chromium through
// chromedp: they skip when chromium is missing, and fail instead when the
// CI variable is set.
package console
