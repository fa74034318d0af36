package actors

import (
	"errors"
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/heraldpush/herald/storage"
	"github.com/sideshow/apns2"
)

// Credential environment "auto" (SPEC.md §6.1): a credential valid in both
// APNs environments (a .p8 key, or a universal "Apple Push Services:"
// certificate) does not know whether a device's token is a sandbox token
// (a development build) or a production one (App Store, TestFlight). A
// device is pushed to production first; on BadDeviceToken the same push
// goes once to sandbox; the environment that accepted it is remembered in
// the device's record (storage.Device.Environment) and used from then on,
// also after a restart. A BadDeviceToken in the remembered environment, or
// on sandbox after production refused, unbinds the device as usual.
//
// The tenant actor decides and reports (PushOutcome.Environment, set only
// when it differs from what the device remembered); the device's owner
// remembers: the user actor with its next write, or, for a group member
// the fan-out delivered to itself, the member's actor on a
// DeviceEnvironment.

// Environment names as stored in certificate and device records.
const (
	environmentAuto       = "auto"
	environmentProduction = "production"
	environmentSandbox    = "sandbox"
)

// errOpenSandbox wraps a failure to build an auto credential's sandbox
// client.
var errOpenSandbox = errors.New("actors: open the credential for sandbox")

// clientFor returns the client job goes through: the credential's own, or
// for an auto credential the one of the environment the job is for (the
// device's remembered one, else production), built at its first use.
func (t *tenantActor) clientFor(job *PushJob) (pusher, error) {
	if !t.auto {
		return t.client, nil
	}
	if job.sentTo == "" {
		job.sentTo = job.Environment
		if job.sentTo != environmentSandbox {
			job.sentTo = environmentProduction
		}
	}
	if job.sentTo != environmentSandbox {
		return t.client, nil
	}
	if t.sandbox == nil {
		c, err := t.sys.opts.NewPusher(t.key.app, &t.cert, t.sys.opts.SandboxURL)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errOpenSandbox, err)
		}
		t.sandbox = c
	}
	return t.sandbox, nil
}

// retryOnSandbox sends job to sandbox after production answered
// BadDeviceToken, when its credential is auto and its device remembers no
// environment yet, and reports whether it did. Once: sandbox's own
// BadDeviceToken unbinds the device.
func (t *tenantActor) retryOnSandbox(ctx actor.Context, job *PushJob, reason string) bool {
	if !t.auto || job.Environment != "" || job.sentTo != environmentProduction || reason != apns2.ReasonBadDeviceToken {
		return false
	}
	job.sentTo = environmentSandbox
	t.resend(ctx, job)
	return true
}

// learned is the environment an auto credential's accepted push teaches
// its device: where it went, if the device did not remember that
// already; "" otherwise.
func (t *tenantActor) learned(job *PushJob) string {
	if !t.auto || job.sentTo == job.Environment {
		return ""
	}
	return job.sentTo
}

// setDeviceEnvironment remembers env for token in rec and reports whether
// that changed it.
func setDeviceEnvironment(rec *storage.User, token, env string) bool {
	i := slices.IndexFunc(rec.Devices, func(d storage.Device) bool { return d.Token == token })
	if i < 0 || env == "" || rec.Devices[i].Environment == env {
		return false
	}
	rec.Devices[i].Environment = env
	return true
}

// rememberEnvironment keeps the environment a push outcome taught one of
// this user's devices. The record is saved with the message's settle
// write, as a raised badge is (badgeDirty), so it costs no write of its
// own.
func (u *userActor) rememberEnvironment(o *PushOutcome) {
	if o.Environment != "" && setDeviceEnvironment(&u.rec, o.Token, o.Environment) {
		u.badgeDirty = true
	}
}

// deviceEnvironment handles a DeviceEnvironment from a group fan-out: the
// change is written on its own, without waiting (losing it costs one more
// BadDeviceToken round trip, not a push).
func (u *userActor) deviceEnvironment(m *DeviceEnvironment) error {
	if err := u.load(); err != nil {
		return err
	}
	if !setDeviceEnvironment(&u.rec, m.Token, m.Environment) {
		return nil
	}
	b := u.sys.store.NewBatch()
	u.putUser(b)
	if err := u.sys.store.CommitAsync(b); err != nil {
		u.loaded = false
		return fmt.Errorf("save user %s/%s: %w", u.app, u.user, err)
	}
	return nil
}
