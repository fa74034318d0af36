// Package credential turns an uploaded APNs .p12 certificate or .p8 token
// key into a push credential: it decodes the file, runs the upload checks
// of SPEC.md §3 and §6.1, and keeps the private key encrypted at rest.
//
// # Basics
//
// [CheckUpload] takes an [Upload] (name, password, declared [Environment],
// file bytes) and runs every check in a fixed order, returning the first
// failure as an [*Error] whose Code is one of the Code constants, the
// stable `code` of the HTTP 400 answer. On success it returns a
// [Certificate]: the leaf, its chain, its private key, the topic (bundle id)
// and the environments it can push to. [ParseP12] is the decoding and push
// half of those checks; [Inspect] prints what an upload would see, for
// `herald cert inspect`.
//
// [CheckTokenUpload] does the same for a .p8 ([TokenUpload]: name,
// environment, team id, key id, topic, PEM): it returns a [TokenKey], the
// EC P-256 key that signs provider tokens, or an *Error with
// CodeInvalidKey, CodeInvalidTeamID, CodeInvalidKeyID, CodeTopicRequired
// or CodeInvalidTopic. [TokenKey.Seal] and [OpenSealedKey] keep it at rest
// like a certificate's key; [InspectP8] prints a .p8 for `herald cert
// inspect`. Environment [Auto] is valid for a .p8 and for a universal
// certificate only.
//
// A [Sealer] encrypts with AES-256-GCM under a master key that
// [LoadOrCreateMasterKey] keeps in a file. [Certificate.Seal] produces the
// stored form, certificates in clear and the PKCS#8 key sealed, bound to
// additional data naming the record; [OpenSealed] reverses it when a tenant
// actor needs a TLS client certificate ([Certificate.TLS]).
//
// # Caveats
//
// A push certificate's environments come from Apple's extensions
// 1.2.840.113635.100.6.3.1 (development) and .2 (production) when present,
// else from the subject common name. A universal "Apple Push Services"
// certificate can push to both, so it never fails environment_mismatch.
//
// ParseP12 accepts an empty password and ignores validity dates; only
// CheckUpload refuses them. Check with CheckUpload, not ParseP12, before
// storing anything.
//
// The .p12 chooses its own key-derivation iteration counts. ParseP12
// refuses counts above 200,000 where they are visible in clear, but one
// nested inside an encrypted safe is only seen after decryption, so a
// server should bound how many uploads it decodes at once.
//
// The master key file is the only thing between the data directory and
// every tenant's private keys, and losing it loses them all: keep it out of
// data-directory backups and back it up separately.
package credential
