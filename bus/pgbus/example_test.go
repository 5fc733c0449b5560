package pgbus_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus/pgbus"
)

type User struct {
	ID   int64  `db:"id,pk"`
	Name string `db:"name"`
}

func (User) TableName() string { return "users" }

// Each instance of the service opens its database with the same name and a
// bus on the same channel: a write by one expires what the others hold.
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("DATABASE_URL")

	b, err := pgbus.New(ctx, dsn,
		pgbus.Channel("app_idmap"),
		pgbus.Heartbeat(5*time.Second),
		pgbus.Logger(slog.Default()))
	if err != nil {
		log.Fatal(err) // "pgbus: …", without the password
	}
	defer b.Close()

	db, err := idmap.Open("pgx", dsn, idmap.Name("app"), idmap.WithBus(b))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// Served from the shared map once loaded, until this or another
	// instance writes user 42.
	u, err := idmap.Get[User](ctx, db, 42)
	if err != nil {
		log.Fatal(err)
	}
	_ = u

	// Other instances are told on this connection right after the UPDATE
	// (in a transaction: inside it, just before COMMIT).
	if _, err := db.ExecContext(ctx, "UPDATE users SET name = $1 WHERE id = $2", "Ada", 42); err != nil {
		log.Fatal(err)
	}
}
