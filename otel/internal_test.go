package idmapotel

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/go-idmap/idmap"
)

// TestOneAllStatsPerCollection counts the calls of idmap.AllStats: one per
// collection while registered, none after Unregister.
func TestOneAllStatsPerCollection(t *testing.T) {
	calls := 0
	allStats = func() []idmap.Stats {
		calls++
		return []idmap.Stats{{DB: "fake", Flushes: map[string]uint64{"manual": 1}}}
	}
	t.Cleanup(func() { allStats = idmap.AllStats })

	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	reg, err := Register(mp)
	if err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	for i := 1; i <= 3; i++ {
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		if calls != i {
			t.Fatalf("after %d collections: %d calls of AllStats", i, calls)
		}
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("a collection after Unregister called AllStats (%d calls, want 3)", calls)
	}
}

func TestClamp(t *testing.T) {
	for _, c := range []struct {
		in   uint64
		want int64
	}{{0, 0}, {42, 42}, {1<<63 - 1, 1<<63 - 1}, {1 << 63, 1<<63 - 1}, {^uint64(0), 1<<63 - 1}} {
		if got := clamp(c.in); got != c.want {
			t.Errorf("clamp(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}
