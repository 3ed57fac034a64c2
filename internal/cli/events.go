package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/overture-music/overture/functions/deadletter"
	"github.com/overture-music/overture/internal/eventtype"
	"github.com/overture-music/overture/internal/function"
	"github.com/overture-music/overture/internal/identity"
)

// Defaults of `overture events`: where `make run` puts PostgreSQL and the
// broker ingress.
const (
	defaultDatabaseURL = "postgres://overture@127.0.0.1:5433/overture?sslmode=disable"
	defaultBrokerURL   = "http://127.0.0.1:8081/overture/default"
)

const eventsUsage = `usage:
  overture events dlq list [--limit N]        list dead-lettered events not yet re-driven
  overture events dlq redrive [--broker-url URL] ID... | --all
                                              publish them to the broker again
  overture events doc                         print the event catalog as Markdown (docs/events.md)

environment:
  DATABASE_URL          PostgreSQL holding the dead_letter table (default ` + defaultDatabaseURL + `)
  OVERTURE_BROKER_URL   broker ingress re-driven events are posted to (then BROKER_URL;
                        default ` + defaultBrokerURL + `)
  OVERTURE_IDENTITY_TOKEN_FILE  the sender identity token re-driven events are posted
                        with; unset: each event as its catalog publisher, minted with
                        the key of make run's data directory (OVERTURE_DATA_DIR, default .data)
`

// runEvents is `overture events`.
func runEvents(ctx context.Context, args []string) error {
	return events(ctx, args, os.Stdout, os.Stderr, os.Getenv)
}

func events(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	usage := func() error {
		fmt.Fprint(stderr, eventsUsage)
		return errUsage
	}
	if len(args) == 0 {
		return usage()
	}
	switch args[0] {
	case "doc":
		_, err := io.WriteString(stdout, eventtype.Markdown())
		return err
	case "dlq":
		if len(args) < 2 {
			return usage()
		}
		dbURL := databaseURL(getenv)
		switch args[1] {
		case "list":
			return dlqList(ctx, args[2:], dbURL, stdout, stderr)
		case "redrive":
			brokerURL := getenv("OVERTURE_BROKER_URL")
			if brokerURL == "" {
				brokerURL = getenv("BROKER_URL") // the platform's cfg key
			}
			if brokerURL == "" {
				brokerURL = defaultBrokerURL
			}
			return dlqRedrive(ctx, args[2:], dbURL, redrivePublisher(brokerURL, getenv), stdout, stderr)
		}
	}
	return usage()
}

func openDLQ(ctx context.Context, dbURL string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	if err := deadletter.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("dead-letter table: %w", err)
	}
	return pool, nil
}

func dlqList(ctx context.Context, args []string, dbURL string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events dlq list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	limit := fs.Int("limit", 50, "most entries to list")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *limit <= 0 {
		fmt.Fprint(stderr, eventsUsage)
		return errUsage
	}
	pool, err := openDLQ(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	entries, err := deadletter.List(ctx, pool, *limit)
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tTYPE\tSOURCE\tEVENT ID\tTIMES\tDESTINATION\tCODE\tERROR")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, e.ReceivedAt.UTC().Format("2006-01-02T15:04:05Z"),
			e.Event.Type(), e.Event.Source(), e.Event.ID(), e.Times, e.ErrorDest, e.ErrorCode, oneLine(e.ErrorData, 120))
	}
	return tw.Flush()
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// redrivePublisher posts re-driven events to the broker with a sender
// identity, which the broker requires: the token in OVERTURE_IDENTITY_TOKEN_FILE
// when set (on Knative: kubectl create token <publisher> --audience
// eventing.knative.dev/broker/overture/default), otherwise — against make
// run — each event as the publisher the catalog names for its type, minted
// with the platform's issuer key under OVERTURE_DATA_DIR (default .data).
func redrivePublisher(brokerURL string, getenv func(string) string) func(url string) function.Publisher {
	return func(url string) function.Publisher {
		if url == "" {
			url = brokerURL
		}
		if f := getenv(identity.TokenFileKey); f != "" {
			return function.NewHTTPPublisher(url, nil).WithToken(identity.FileToken(f))
		}
		dataDir := cmp.Or(getenv("OVERTURE_DATA_DIR"), ".data")
		return function.PublisherFunc(func(ctx context.Context, events ...event.Event) error {
			for _, e := range events {
				spec, ok := eventtype.Lookup(e.Type())
				if !ok || len(spec.Publishers()) == 0 {
					return fmt.Errorf("event %s has type %s, which the catalog does not know: re-drive it with %s", e.ID(), e.Type(), identity.TokenFileKey)
				}
				tok, err := identity.MintFromDataDir(dataDir, spec.Publishers()[0])
				if err != nil {
					return fmt.Errorf("re-drive needs a sender identity (%s, or make run's data directory): %w", identity.TokenFileKey, err)
				}
				pub := function.NewHTTPPublisher(url, nil).WithToken(identity.TokenFunc(func(context.Context) (string, error) { return tok, nil }))
				if err := pub.Publish(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

func dlqRedrive(ctx context.Context, args []string, dbURL string, publisher func(url string) function.Publisher, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events dlq redrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "re-drive every pending dead letter")
	brokerURL := fs.String("broker-url", "", "broker ingress to post the events to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ids []int64
	for _, a := range fs.Args() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id <= 0 {
			fmt.Fprintf(stderr, "overture events dlq redrive: %q is not a dead-letter id (see `overture events dlq list`)\n", a)
			return errUsage
		}
		ids = append(ids, id)
	}
	if *all == (len(ids) > 0) {
		fmt.Fprint(stderr, "overture events dlq redrive: give dead-letter ids or --all (not both)\n\n"+eventsUsage)
		return errUsage
	}
	pool, err := openDLQ(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *all {
		ids = nil
	}
	n, err := deadletter.Redrive(ctx, pool, publisher(*brokerURL), ids)
	if err != nil {
		return err
	}
	if !*all && n < len(ids) {
		fmt.Fprintf(stdout, "re-drove %d of %d (the others are unknown or already re-driven)\n", n, len(ids))
		return nil
	}
	fmt.Fprintf(stdout, "re-drove %d\n", n)
	return nil
}

// databaseURL is DATABASE_URL, or the database `make run` starts.
func databaseURL(getenv func(string) string) string {
	if u := getenv("DATABASE_URL"); u != "" {
		return u
	}
	return defaultDatabaseURL
}
