package natsbridge

// Stream settings shared by every instance. Creating the stream is race-free:
// JetStream's create is idempotent for an identical configuration, and an
// instance that loses the race to one with other settings is told the name is
// in use, reads the existing stream and checks it like any other.
//
// What an existing stream must match (a mismatch is ErrConflict, Start fails):
//   - subjects: exactly <prefix>.> (other subjects would mix foreign messages
//     into the event stream; a narrower set would refuse some topics);
//   - storage and replicas: they decide what survives a restart, and JetStream
//     cannot change storage in place;
//   - retention: limits (interest or work-queue retention would delete
//     messages other instances have not read);
//   - it must accept publishes: not sealed, not a mirror, acknowledgements on.
//
// What is brought to this instance's configuration when it starts (logged;
// the last instance to start wins, so give every instance the same values):
//   - max age, and with it the duplicate window (the smaller of max age and
//     two minutes);
//   - atomic publish, switched on (never off) so batches can be atomic.
//
// Anything else (message or byte limits, discard policy, placement, ...) is the
// operator's and left as it is.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream API error codes this package reacts to.
const (
	codeSubjectOverlap       jetstream.ErrorCode = 10065
	codeBatchDuplicate       jetstream.ErrorCode = 10201
	codeBatchDisabled        jetstream.ErrorCode = 10174
	codeBatchTooLarge        jetstream.ErrorCode = 10199
	codeBatchTooManyInflight jetstream.ErrorCode = 10210
	codeDuplicateInProcess   jetstream.ErrorCode = 10158
	codeWrongLastSeq         jetstream.ErrorCode = 10071
)

func (b *Bridge) streamConfig() jetstream.StreamConfig {
	storage := jetstream.MemoryStorage
	if b.cfg.Storage == StorageFile {
		storage = jetstream.FileStorage
	}
	return jetstream.StreamConfig{
		Name:               b.cfg.Stream,
		Description:        "Pillarbox events",
		Subjects:           []string{b.cfg.Subject + ".>"},
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		Storage:            storage,
		Replicas:           b.cfg.Replicas,
		MaxAge:             b.cfg.MaxAge,
		Duplicates:         b.cfg.dupWindow(),
		AllowAtomicPublish: true,
	}
}

// ensureStream returns the stream's info, creating the stream if it does not
// exist and checking it otherwise. At the first join it also brings the
// updatable settings to the configuration's.
func (b *Bridge) ensureStream() (*jetstream.StreamInfo, error) {
	// Reading the info is quick, or the server is not answering (a stream
	// without a leader, a request lost on the way): it is retried rather
	// than waited for. Creating and updating may take a cluster longer.
	ictx, icancel := context.WithTimeout(b.ctx, b.apiTimeout())
	defer icancel()
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.PublishTimeout)
	defer cancel()
	want := b.streamConfig()
	info, err := b.streamInfo(ictx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		var s jetstream.Stream
		s, err = b.js.CreateStream(ctx, want)
		if err == nil {
			info = s.CachedInfo()
			b.log.Info("nats stream created", "stream", want.Name, "subjects", want.Subjects,
				"storage", b.cfg.Storage, "replicas", want.Replicas, "max_age", want.MaxAge,
				"created", info.Created)
			return info, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, classifyStreamErr(err, b.cfg.Subject)
		}
		// Another instance created it first, with other settings.
		info, err = b.streamInfo(ctx)
	}
	if err != nil {
		if js, _ := b.nc.ConnectedServerJetStream(); !js && errors.Is(err, nats.ErrNoResponders) {
			// The server says it has no JetStream and nothing else answered.
			// (No answer from a server with JetStream is a server starting.)
			return nil, fmt.Errorf("%w: server %s: %w", ErrNoJetStream, b.nc.ConnectedServerName(), err)
		}
		return nil, classifyStreamErr(err, b.cfg.Subject)
	}
	if err := conflicts(&info.Config, &want); err != nil {
		return nil, err
	}
	select {
	case <-b.joined:
		return info, nil // settings are brought in line once, at the first join
	default:
	}
	return b.updateStream(ctx, info, &want), nil
}

// streamInfo asks the server for the stream's current info.
func (b *Bridge) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		return nil, err
	}
	return s.CachedInfo(), nil
}

// updateStream brings max age, the duplicate window and atomic publish to
// want's values. A failed update is logged and the stream used as it is.
func (b *Bridge) updateStream(ctx context.Context, info *jetstream.StreamInfo, want *jetstream.StreamConfig) *jetstream.StreamInfo {
	have := info.Config
	if have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates && have.AllowAtomicPublish {
		return info
	}
	cfg := have
	cfg.MaxAge, cfg.Duplicates, cfg.AllowAtomicPublish = want.MaxAge, want.Duplicates, true
	s, err := b.js.UpdateStream(ctx, cfg)
	if err != nil {
		b.log.Warn("nats stream settings not updated", "stream", have.Name, "err", err)
		return info
	}
	b.log.Warn("nats stream settings updated", "stream", have.Name,
		"max_age_was", have.MaxAge, "max_age", cfg.MaxAge,
		"duplicates_was", have.Duplicates, "duplicates", cfg.Duplicates,
		"atomic_publish_was", have.AllowAtomicPublish, "atomic_publish", s.CachedInfo().Config.AllowAtomicPublish)
	return s.CachedInfo()
}

// conflicts names the first setting of an existing stream that this package
// cannot work with, wrapping ErrConflict.
func conflicts(have, want *jetstream.StreamConfig) error {
	bad := func(setting, is, configured string) error {
		return fmt.Errorf("%w: stream %q has %s %s, configured %s", ErrConflict, have.Name, setting, is, configured)
	}
	switch {
	case !slices.Equal(have.Subjects, want.Subjects):
		return bad("subjects", fmt.Sprint(have.Subjects), fmt.Sprint(want.Subjects))
	case have.Storage != want.Storage:
		return bad("storage", storageName(have.Storage), storageName(want.Storage))
	case max(have.Replicas, 1) != want.Replicas:
		return bad("replicas", fmt.Sprint(max(have.Replicas, 1)), fmt.Sprint(want.Replicas))
	case have.Retention != want.Retention:
		return bad("retention", have.Retention.String(), want.Retention.String())
	case have.Sealed:
		return bad("sealed", "true", "false")
	case have.NoAck:
		return bad("no_ack", "true", "false")
	case have.Mirror != nil:
		return bad("a mirror source", have.Mirror.Name, "none")
	}
	return nil
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.FileStorage {
		return string(StorageFile)
	}
	return string(StorageMemory)
}

// classifyStreamErr turns a stream API error into ErrNoJetStream or
// ErrConflict when it is definite, and leaves it as it is otherwise.
func classifyStreamErr(err error, prefix string) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("%w: %w", ErrNoJetStream, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == codeSubjectOverlap:
		return fmt.Errorf("%w: another stream captures subjects under %q: %w", ErrConflict, prefix, err)
	}
	return fmt.Errorf("stream: %w", err)
}

// identityOf is the identity of the incarnation info describes.
func identityOf(info *jetstream.StreamInfo) Identity {
	return Identity{Stream: info.Config.Name, Created: info.Created.UTC()}
}
