package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
)

// GroupLag is how far one consumer group of this process is behind on one
// topic: messages published and not yet acked by the group.
type GroupLag struct {
	Topic string
	// Group is the consumer group's name; for fan-out groups (FanOutGroup),
	// only their prefix, so the label set stays fixed across restarts.
	Group    string
	Messages int64
}

// lagCountCap bounds the count of a very late postgres group (the count
// walks the messages after the group's offset).
const lagCountCap = 1_000_000

type groupKey struct{ topic, group string }

// trackGroup remembers that this process consumes topic in group.
func (b *Bus) trackGroup(topic, group, label string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.groups == nil {
		b.groups = map[groupKey]string{}
	}
	b.groups[groupKey{topic, group}] = label
}

// Lag reports, for every (topic, consumer group) this process subscribed
// to, the messages not yet acked by the group: exact on memory and Kafka
// (per partition: end offset minus the group's committed offset), and on
// PostgreSQL the messages after the group's committed position (a batch's
// acks commit together at its end; counted up to a million). A group whose lag cannot be read is left out and its error
// returned with the others.
func (b *Bus) Lag(ctx context.Context) ([]GroupLag, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	b.mu.Lock()
	keys := make([]groupKey, 0, len(b.groups))
	labels := make(map[groupKey]string, len(b.groups))
	for k, l := range b.groups {
		keys = append(keys, k)
		labels[k] = l
	}
	b.mu.Unlock()
	slices.SortFunc(keys, func(x, y groupKey) int {
		return strings.Compare(x.topic+"\x00"+x.group, y.topic+"\x00"+y.group)
	})
	var out []GroupLag
	var errs []error
	for _, k := range keys {
		n, err := b.backend.lag(ctx, k.topic, k.group)
		if err != nil {
			errs = append(errs, fmt.Errorf("bus: lag of %s on %s: %w", k.group, k.topic, err))
			continue
		}
		out = append(out, GroupLag{Topic: k.topic, Group: labels[k], Messages: n})
	}
	return out, errors.Join(errs...)
}

func (p *postgresBackend) lag(ctx context.Context, topic, group string) (int64, error) {
	q := fmt.Sprintf(`
		SELECT count(*) FROM (
			SELECT 1 FROM %[1]s m, %[2]s o
			WHERE o.consumer_group = $1
			  AND ((m.transaction_id = o.last_processed_transaction_id AND m."offset" > o.offset_acked)
			       OR m.transaction_id > o.last_processed_transaction_id)
			LIMIT %[3]d) AS behind`,
		p.schema.MessagesTable(topic), p.offsets.MessagesOffsetsTable(topic), lagCountCap)
	var n int64
	err := p.pool.QueryRow(ctx, q, group).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

func (m *memoryBackend) lag(_ context.Context, topic, group string) (int64, error) {
	m.mu.Lock()
	g, ok := m.groups[memGroupKey{topic, group}]
	m.mu.Unlock()
	if !ok {
		return 0, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return int64(len(g.queue)) + g.inFlight, nil
}

func (k *kafkaBackend) lag(ctx context.Context, topic, group string) (int64, error) {
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := k.groupLag(topic, group)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (k *kafkaBackend) groupLag(topic, group string) (int64, error) {
	partitions, err := k.client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	coordinator, err := k.client.Coordinator(group)
	if err != nil {
		return 0, err
	}
	req := sarama.NewOffsetFetchRequest(k.sarama.Version, group, map[string][]int32{topic: partitions})
	resp, err := coordinator.FetchOffset(req)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range partitions {
		end, err := k.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		committed := int64(-1)
		if blk := resp.GetBlock(topic, p); blk != nil && errors.Is(blk.Err, sarama.ErrNoError) {
			committed = blk.Offset
		}
		if committed < 0 { // nothing committed yet: the group starts at the oldest message
			oldest, err := k.client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				return 0, err
			}
			committed = oldest
		}
		total += max(end-committed, 0)
	}
	return total, nil
}
