package credential

// Environment is the APNs environment a certificate is declared for on
// upload: it picks the APNs host (api.sandbox.push.apple.com or
// api.push.apple.com) that pushes with this certificate go to, or Auto
// for both.
type Environment string

// The two APNs environments. Apple's development builds (Xcode, ad hoc
// through the development profile) get sandbox device tokens; App Store and
// TestFlight builds get production tokens. A token from one environment is
// rejected by the other with BadDeviceToken.
const (
	Sandbox    Environment = "sandbox"
	Production Environment = "production"
	// Auto is for a credential valid in both environments (a .p8 key, or
	// a universal "Apple Push Services:" certificate): a device is tried
	// on production first and, on BadDeviceToken, once on sandbox, and
	// the environment that accepted it is remembered per device.
	Auto Environment = "auto"
)

// ParseEnvironment returns s as an Environment, or an *Error with
// CodeInvalidEnvironment when s is not exactly "sandbox", "production" or
// "auto".
// Apple's own word "development" is refused rather than mapped so that the
// API has one spelling of each environment.
func ParseEnvironment(s string) (Environment, error) {
	switch e := Environment(s); e {
	case Sandbox, Production, Auto:
		return e, nil
	}
	return "", newError(CodeInvalidEnvironment, `the environment must be "sandbox", "production" or "auto"`, nil)
}
