package noop

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestHandleAcceptsAnyEventWithoutReply(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetSource("/test")
	e.SetType("music.overture.test.anything.v1")
	reply, err := New().Handle(context.Background(), e)
	if err != nil || reply != nil {
		t.Fatalf("Handle = %v, %v; want nil, nil", reply, err)
	}
}
