// Package herald holds the domain types every other package speaks: the
// message event an IM backend posts, its elems and offline push options, and
// the push text rules that turn a message into what a phone shows.
//
// # Basics
//
// A [Message] is decoded by the engine's ingress (package engine/wire for
// herald's own JSON API), stored by storage, and carried by the actors; its
// [APNsOptions] (subtitle, image, thread, ...) and push type (alert or
// VoIP) are SPEC.md §6.1's. [Render] applies the push text rules of
// SPEC.md §2 once per message and recipient kind, with the APNs options
// and the default thread (the conversation); [AppendPayload] turns the
// rendered [Alert] and a badge into the APNs JSON payload, truncating the
// body so the payload fits [MaxPayloadSize] ([AppendPayloadLimit] with
// [MaxVoIPPayloadSize] for VoIP).
//
// The package has no dependencies beyond the standard library, so every layer
// (engine, actors, storage, bench) can import it without cycles.
package herald
