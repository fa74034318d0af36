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
	routeUnknown      = "unknown"
)

// request is one routed request: the path's ids, already unescaped.
type request struct {
	ctx   *fasthttp.RequestCtx
	app   string
	user  string
	group string
	id    string // business_id, message id or conversation id
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
	method := string(ctx.Method())
	switch path {
	case "/healthz":
		return routeHealth, s.only(method, "GET", func() *apiError { return s.healthz(ctx) })
	case "/metrics":
		return routeMetrics, s.only(method, "GET", func() *apiError { return s.serveMetrics(ctx) })
	}
	if s.draining.Load() {
		return routeUnknown, &apiError{status: 503, code: codeShuttingDown, message: "herald is shutting down", retryAfter: 5}
	}
	if path == "/v1/apps" {
		return routeApps, s.only(method, "POST", func() *apiError { return s.createApp(ctx) })
	}
	const prefix = "/v1/apps/"
	if !strings.HasPrefix(path, prefix) {
		return routeUnknown, errorf(404, codeNotFound, "no such endpoint")
	}
	var buf [maxSegments]string
	seg, ok := splitPath(path[len(prefix):], buf[:0])
	if !ok {
		return routeUnknown, errorf(404, codeNotFound, "no such endpoint")
	}
	for i, v := range seg {
		if strings.IndexByte(v, '%') < 0 {
			continue
		}
		u, err := url.PathUnescape(v)
		if err != nil {
			return routeUnknown, errorf(400, codeNotFound, "bad escape in path")
		}
		seg[i] = u
	}
	r := &request{ctx: ctx, app: seg[0]}
	ep := match(r, seg)
	if ep == nil {
		return routeUnknown, errorf(404, codeNotFound, "no such endpoint")
	}
	route := ep.route
	if !validID(r.app) {
		return route, errorf(400, codeInvalidAppID, "app_id must be 1-%d bytes of printable UTF-8", maxIDLen)
	}
	if err := s.auth.requireApp(ctx, r.app); err != nil {
		return route, err
	}
	if r.user != "" || route == routeAPNS || route == routePresence || route == routeProfile || route == routeUser || route == routeMember || route == routeConversation {
		if !validID(r.user) {
			return route, errorf(400, codeInvalidUserID, "user_id must be 1-%d bytes of printable UTF-8", maxIDLen)
		}
	}
	if route == routeGroup || route == routeMember {
		if !validID(r.group) {
			return route, errorf(400, codeInvalidGroupID, "group_id must be 1-%d bytes of printable UTF-8", maxIDLen)
		}
	}
	handler := ep.handler(method)
	if handler == nil {
		return route, errorf(405, codeMethodNotAllowed, "use %s", ep.allowed())
	}
	return route, handler(s, r)
}

// only runs h for the one allowed method, else answers 405.
func (s *Server) only(method, allowed string, h func() *apiError) *apiError {
	if method != allowed {
		return errorf(405, codeMethodNotAllowed, "use %s", allowed)
	}
	return h()
}

// maxSegments bounds the path segments after /v1/apps/ (the longest
// path, a group member, has five).
const maxSegments = 5

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

// endpoint is one path shape: its route name and its handlers by method.
type endpoint struct {
	route    string
	handlers []methodHandler
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

// The endpoints under /v1/apps/{app}/, built once: a table instead of maps
// built per request.
var (
	epRotate       = &endpoint{routeRotate, []methodHandler{{"POST", (*Server).rotateKey}}}
	epCerts        = &endpoint{routeCerts, []methodHandler{{"POST", (*Server).uploadCertificate}, {"GET", (*Server).listCertificates}}}
	epCert         = &endpoint{routeCert, []methodHandler{{"DELETE", (*Server).deleteCertificate}}}
	epUser         = &endpoint{routeUser, []methodHandler{{"GET", (*Server).getUser}}}
	epAPNS         = &endpoint{routeAPNS, []methodHandler{{"PUT", (*Server).setAPNS}}}
	epPresence     = &endpoint{routePresence, []methodHandler{{"PUT", (*Server).setPresence}}}
	epProfile      = &endpoint{routeProfile, []methodHandler{{"PUT", (*Server).setProfile}}}
	epConversation = &endpoint{routeConversation, []methodHandler{{"PUT", (*Server).setConversation}}}
	epGroup        = &endpoint{routeGroup, []methodHandler{{"PUT", (*Server).putGroup}}}
	epMember       = &endpoint{routeMember, []methodHandler{{"PUT", (*Server).putMember}, {"DELETE", (*Server).deleteMember}}}
	epMessages     = &endpoint{routeMessages, []methodHandler{{"POST", (*Server).postMessage}}}
	epMessageBatch = &endpoint{routeMessageBatch, []methodHandler{{"POST", (*Server).postMessageBatch}}}
	epMessage      = &endpoint{routeMessage, []methodHandler{{"GET", (*Server).getMessage}}}
)

// match picks the endpoint for /v1/apps/{app}/... segments and fills in
// the path's ids; nil if there is none.
func match(r *request, seg []string) *endpoint {
	switch {
	case len(seg) == 2 && seg[1] == "keys:rotate":
		return epRotate
	case len(seg) == 2 && seg[1] == "certificates":
		return epCerts
	case len(seg) == 3 && seg[1] == "certificates":
		r.id = seg[2]
		return epCert
	case len(seg) == 3 && seg[1] == "users":
		r.user = seg[2]
		return epUser
	case len(seg) == 4 && seg[1] == "users":
		r.user = seg[2]
		switch seg[3] {
		case "apns":
			return epAPNS
		case "presence":
			return epPresence
		case "profile":
			return epProfile
		}
	case len(seg) == 5 && seg[1] == "users" && seg[3] == "conversations":
		r.user, r.id = seg[2], seg[4]
		return epConversation
	case len(seg) == 3 && seg[1] == "groups":
		r.group = seg[2]
		return epGroup
	case len(seg) == 5 && seg[1] == "groups" && seg[3] == "members":
		r.group, r.user = seg[2], seg[4]
		return epMember
	case len(seg) == 2 && seg[1] == "messages":
		return epMessages
	case len(seg) == 2 && seg[1] == "messages:batch":
		return epMessageBatch
	case len(seg) == 3 && seg[1] == "messages":
		r.id = seg[2]
		return epMessage
	}
	return nil
}
