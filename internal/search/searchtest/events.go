package searchtest

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/overture-music/overture/internal/eventtype"
)

var eventSeq atomic.Int64

// ChangeEvent builds a change event the way cdc/ emits it: type
// music.overture.cdc.<table>.changed.v1, partitionkey "<table>:<key>",
// commitlsn, and Debezium's envelope as data. key lists the row's primary key
// values.
func ChangeEvent(table, op string, before, after map[string]any, commitLSN uint64, key ...string) event.Event {
	e := event.New()
	e.SetType(eventtype.CDCChanged(table))
	e.SetSource("/overture/cdc/test")
	e.SetID(strconv.FormatUint(commitLSN, 10) + "/" + strconv.FormatInt(eventSeq.Add(1), 10))
	e.SetTime(time.Now())
	e.SetExtension("partitionkey", table+":"+strings.Join(key, ":"))
	e.SetExtension("commitlsn", strconv.FormatUint(commitLSN, 10))
	d := eventtype.ChangeData{
		Before: before, After: after, Op: op, TsMs: time.Now().UnixMilli(),
		Source: eventtype.ChangeSource{Connector: "overture-cdc", DB: "test", Schema: "public", Table: table, LSN: commitLSN, TsMs: time.Now().UnixMilli()},
	}
	b, _ := json.Marshal(d)
	_ = e.SetData(event.ApplicationJSON, b)
	return e
}
