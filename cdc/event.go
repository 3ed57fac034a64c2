package cdc

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/lsn"
)

// Connector names this relay in the envelope's source block.
const Connector = "overture-cdc"

// Extension attribute names CDC sets.
const (
	ExtPartitionKey = "partitionkey"
	ExtCommitLSN    = "commitlsn"
)

// toEvent turns a change into the CloudEvent the broker receives: a change
// event for a catalog row, or the outbox row's own event.
func toEvent(c *Change, source, db string, now time.Time) (event.Event, error) {
	if c.Outbox != nil {
		var e event.Event
		if err := json.Unmarshal(c.Outbox, &e); err != nil {
			return e, fmt.Errorf("outbox row %d: decode event: %w", c.OutboxID, err)
		}
		e.SetExtension(ExtCommitLSN, lsn.FormatToken(c.CommitLSN))
		return e, nil
	}
	e := event.New()
	e.SetType(eventtype.CDCChanged(c.Table))
	e.SetSource(source)
	key := strings.Join(c.Key, ":")
	if c.Snapshot {
		e.SetID("snapshot/" + lsn.FormatToken(c.CommitLSN) + "/" + c.Table + "/" + key)
	} else {
		e.SetID(lsn.FormatToken(c.LSN) + "/" + strconv.Itoa(c.Index))
	}
	e.SetTime(c.Commit)
	e.SetExtension(ExtPartitionKey, c.Table+":"+key)
	e.SetExtension(ExtCommitLSN, lsn.FormatToken(c.CommitLSN))
	d := eventtype.ChangeData{
		Before: c.Before,
		After:  c.After,
		Source: eventtype.ChangeSource{
			Connector: Connector, DB: db, Schema: "public", Table: c.Table,
			LSN: c.LSN, TxID: c.TxID, TsMs: c.Commit.UnixMilli(), Snapshot: c.Snapshot,
		},
		Op:             c.Op,
		TsMs:           now.UnixMilli(),
		UnchangedToast: c.UnchangedToast,
	}
	b, err := json.Marshal(d)
	if err != nil {
		return e, fmt.Errorf("encode change of %s %s: %w", c.Table, key, err)
	}
	e.SetDataContentType(event.ApplicationJSON)
	e.DataEncoded = b
	return e, nil
}
