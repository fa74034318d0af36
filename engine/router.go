package engine

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// route names label metrics; they never contain ids.
const (
	routeApps         = "apps"
	routeRotate       = "keys_rotate"
	routeCerts        = "certificates"
	routeCert         = "certificate"
	routeAPNS         = "user_apns"
	routePresence     = "user_presence"
	routeProfile      = "user_profile"
	routeConversation = "user_conversation"
	routeUser         = "user"
	routeGroup        = "group"
	routeMember       = "group_member"
	routeMessages     = "messages"
	routeMessageBatch = "messages_batch"
	routeMessage      = "message"
	routeHealth       = "healthz"
	routeMetrics      = "metrics"
	routeOpenAPI      = "openapi"
	routeConsole      = "console"
	routeStats        = "stats"
	routeAppStats     = "app_stats"
	routeUnknown      = "unknown"
)

// request is one routed request: the path's ids, already unescaped.
type request struct {
	ctx   *fasthttp.RequestCtx
	app   string
	user  string
	group string
	id    string // business_id, message id, conversation id or console file
}

// maxIDLen bounds app, user and group ids.
const maxIDLen = 128

// validID reports whether s may be an app, user or group id: 1–128 bytes
// of UTF-8 without control characters (0x00 separates ids in storage keys).
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	route, err := s.serve(ctx)
	if err != nil {
		writeError(ctx, err)
	}
	s.metrics.observe(route, ctx.Response.StatusCode(), time.Since(start))
}

// serve routes one request and returns its route name and, on failure, the
// error to answer with.
func (s *Server) serve(ctx *fasthttp.RequestCtx) (string, *apiError) {
	path := string(ctx.URI().PathOriginal())
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if route, ok := s.serveFacade(ctx, path); ok {
		return route, nil
	}
	var buf [maxSegments]string
	seg, ok, err := pathIDs(path, buf[:0])
	if err != nil {
		return routeUnknown, errorf(400, codeNotFound, "bad escape in path")
	}
	r := &request{ctx: ctx}
	var ep *endpoint
	if ok {
		ep = match(r, seg)
	}
	// Open routes (health, metrics, the document, the console) keep
	// answering while herald drains; the API answers 503.
	if (ep == nil || ep.scope != scopeOpen) && s.draining.Load() {
		return routeUnknown, &apiError{status: 503, code: codeShuttingDown, message: "herald is shutting down", retryAfter: 5}
	}
	if ep == nil {
		return routeUnknown, errorf(404, codeNotFound, "no such endpoint")
	}
	route := ep.route
	switch ep.scope {
	case scopeAdmin:
		if err := s.auth.requireAdmin(ctx); err != nil {
			return route, err
		}
	case scopeApp:
		if !validID(r.app) {
			return route, errorf(400, codeInvalidAppID, "app_id must be 1-%d bytes of printable UTF-8", maxIDLen)
		}
		if err := s.auth.requireApp(ctx, r.app); err != nil {
			return route, err
		}
		if ep.hasUser && !validID(r.user) {
			return route, errorf(400, codeInvalidUserID, "user_id must be 1-%d bytes of printable UTF-8", maxIDLen)
		}
		if ep.hasGroup && !validID(r.group) {
			return route, errorf(400, codeInvalidGroupID, "group_id must be 1-%d bytes of printable UTF-8", maxIDLen)
		}
	}
	handler := ep.handler(string(ctx.Method()))
	if handler == nil {
		return route, errorf(405, codeMethodNotAllowed, "use %s", ep.allowed())
	}
	return route, handler(s, r)
}

// serveFacade answers the drop-in APIs' paths (gorush, the Matrix push
// gateway, Tencent IM's REST API), which answer in their own shapes and
// authenticate their own way: they are outside the route table, and the
// OpenAPI document describes them apart (facadeOperations in
// openapi_facades.go).
func (s *Server) serveFacade(ctx *fasthttp.RequestCtx, path string) (string, bool) {
	switch facadeOf(path) {
	case facadeMatrix:
		s.serveMatrix(ctx, string(ctx.Method()))
		return routeMatrixNotify, true
	case facadeGorush:
		s.serveGorush(ctx, path, string(ctx.Method()))
		return routeGorush, true
	case facadeTencent:
		return s.serveTencent(ctx, path), true
	}
	return "", false
}

// The drop-in APIs, by the paths they own.
const (
	facadeNone = iota
	facadeMatrix
	facadeGorush
	facadeTencent
)

// facadeOf says which drop-in API owns path (facadeNone: herald's own).
func facadeOf(path string) int {
	switch {
	case path == "/_matrix/push/v1/notify":
		return facadeMatrix
	case path == "/api/push" || strings.HasPrefix(path, "/gorush/"):
		return facadeGorush
	case strings.HasPrefix(path, "/v4/"):
		return facadeTencent
	}
	return facadeNone
}

// maxSegments bounds a path's segments (the longest route, a group
// member, has seven); longer paths are 404 without a table walk.
const maxSegments = 8

// splitPath splits p on '/' into dst, ignoring one trailing slash; false if
// there are more than maxSegments segments.
func splitPath(p string, dst []string) ([]string, bool) {
	p = strings.TrimSuffix(p, "/")
	for {
		if len(dst) == maxSegments {
			return dst, false
		}
		i := strings.IndexByte(p, '/')
		if i < 0 {
			return append(dst, p), true
		}
		dst = append(dst, p[:i])
		p = p[i+1:]
	}
}

type handlerFunc func(*Server, *request) *apiError

// scope is what a route needs before its handler runs.
type scope int

const (
	// scopeApp routes have {app} in their path: the app id is checked,
	// then the app's api_key or the admin token, then the path's other ids.
	scopeApp scope = iota
	// scopeAdmin routes need the admin token.
	scopeAdmin
	// scopeOpen routes need no token and answer while herald drains.
	scopeOpen
)

// endpoint is one path shape: its route name, its path template (as the
// OpenAPI document writes it) and its handlers by method.
type endpoint struct {
	route    string
	path     string
	scope    scope
	handlers []methodHandler

	// Derived from path by init.
	seg               []string // "{...}" marks a parameter
	hasUser, hasGroup bool
}

type methodHandler struct {
	method string
	handle handlerFunc
}

func (e *endpoint) handler(method string) handlerFunc {
	for _, h := range e.handlers {
		if h.method == method {
			return h.handle
		}
	}
	return nil
}

// allowed lists the endpoint's methods for a 405, in a fixed order.
func (e *endpoint) allowed() string {
	methods := make([]string, len(e.handlers))
	for i, h := range e.handlers {
		methods[i] = h.method
	}
	return strings.Join(methods, " or ")
}

// routes is the router's table: every path herald serves. match tries
// them in order, so the hottest come first; no two may match one path.
// To add a route, add a line here and its operation in openapi.go
// (TestOpenAPI_CoversRoutes fails until both agree).
var routes = []*endpoint{
	{route: routeMessages, path: "/v1/apps/{app}/messages", handlers: []methodHandler{{"POST", (*Server).postMessage}}},
	{route: routeMessageBatch, path: "/v1/apps/{app}/messages:batch", handlers: []methodHandler{{"POST", (*Server).postMessageBatch}}},
	{route: routeAPNS, path: "/v1/apps/{app}/users/{user}/apns", handlers: []methodHandler{{"PUT", (*Server).setAPNS}}},
	{route: routePresence, path: "/v1/apps/{app}/users/{user}/presence", handlers: []methodHandler{{"PUT", (*Server).setPresence}}},
	{route: routeProfile, path: "/v1/apps/{app}/users/{user}/profile", handlers: []methodHandler{{"PUT", (*Server).setProfile}}},
	{route: routeConversation, path: "/v1/apps/{app}/users/{user}/conversations/{conversation}", handlers: []methodHandler{{"PUT", (*Server).setConversation}}},
	{route: routeUser, path: "/v1/apps/{app}/users/{user}", handlers: []methodHandler{{"GET", (*Server).getUser}}},
	{route: routeMessage, path: "/v1/apps/{app}/messages/{message_id}", handlers: []methodHandler{{"GET", (*Server).getMessage}}},
	{route: routeGroup, path: "/v1/apps/{app}/groups/{group}", handlers: []methodHandler{{"PUT", (*Server).putGroup}}},
	{route: routeMember, path: "/v1/apps/{app}/groups/{group}/members/{user}", handlers: []methodHandler{{"PUT", (*Server).putMember}, {"DELETE", (*Server).deleteMember}}},
	{route: routeCerts, path: "/v1/apps/{app}/certificates", handlers: []methodHandler{{"POST", (*Server).uploadCertificate}, {"GET", (*Server).listCertificates}}},
	{route: routeCert, path: "/v1/apps/{app}/certificates/{business_id}", handlers: []methodHandler{{"DELETE", (*Server).deleteCertificate}}},
	{route: routeRotate, path: "/v1/apps/{app}/keys:rotate", handlers: []methodHandler{{"POST", (*Server).rotateKey}}},
	{route: routeAppStats, path: "/v1/apps/{app}/stats", handlers: []methodHandler{{"GET", (*Server).appStats}}},
	{route: routeTencentSettings, path: "/v1/apps/{app}/tencent", handlers: []methodHandler{{"PUT", (*Server).putTencent}, {"GET", (*Server).getTencent}}},
	{route: routeMatrixApps, path: "/v1/apps/{app}/matrix", handlers: []methodHandler{{"PUT", (*Server).putMatrixApps}, {"GET", (*Server).getMatrixApps}}},
	{route: routeApps, path: "/v1/apps", scope: scopeAdmin, handlers: []methodHandler{{"POST", (*Server).createApp}, {"GET", (*Server).listApps}}},
	{route: routeStats, path: "/v1/stats", scope: scopeAdmin, handlers: []methodHandler{{"GET", (*Server).stats}}},
	{route: routeHealth, path: "/healthz", scope: scopeOpen, handlers: []methodHandler{{"GET", (*Server).healthz}}},
	{route: routeMetrics, path: "/metrics", scope: scopeOpen, handlers: []methodHandler{{"GET", (*Server).serveMetrics}}},
	{route: routeOpenAPI, path: "/v1/openapi.json", scope: scopeOpen, handlers: []methodHandler{{"GET", (*Server).serveOpenAPI}}},
	{route: routeConsole, path: "/console/", scope: scopeOpen, handlers: []methodHandler{{"GET", (*Server).serveConsole}}},
	{route: routeConsole, path: "/console/{file}", scope: scopeOpen, handlers: []methodHandler{{"GET", (*Server).serveConsole}}},
}

func init() {
	for _, ep := range routes {
		ep.seg, _ = splitPath(strings.TrimPrefix(ep.path, "/"), nil)
		for _, s := range ep.seg {
			ep.hasUser = ep.hasUser || s == "{user}"
			ep.hasGroup = ep.hasGroup || s == "{group}"
		}
	}
}

// pathIDs splits a path (without its query) into segments in dst and
// unescapes each after the split, so an escaped '/' stays inside its id.
// ok is false for a path of too many segments; err reports a bad escape.
func pathIDs(path string, dst []string) (seg []string, ok bool, err error) {
	seg, ok = splitPath(strings.TrimPrefix(path, "/"), dst)
	if !ok {
		return nil, false, nil
	}
	for i, v := range seg {
		if strings.IndexByte(v, '%') < 0 {
			continue
		}
		u, err := url.PathUnescape(v)
		if err != nil {
			return nil, false, err
		}
		seg[i] = u
	}
	return seg, true, nil
}

// match picks the endpoint for a path's segments and fills in the path's
// ids; nil if there is none. A template segment "{x}"
// matches any one segment, an empty one included (the id checks refuse
// it later, with their own codes).
func match(r *request, seg []string) *endpoint {
next:
	for _, ep := range routes {
		if len(ep.seg) != len(seg) {
			continue
		}
		for i, t := range ep.seg {
			if t[0] != '{' && t != seg[i] {
				continue next
			}
		}
		for i, t := range ep.seg {
			switch t {
			case "{app}":
				r.app = seg[i]
			case "{user}":
				r.user = seg[i]
			case "{group}":
				r.group = seg[i]
			default:
				if t[0] == '{' {
					r.id = seg[i]
				}
			}
		}
		return ep
	}
	return nil
}
