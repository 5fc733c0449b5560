package idmap

import "testing"

type firstCaseRow[N any] struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (firstCaseRow[N]) TableName() string { return "first_case_rows" }

type firstCaseTag struct {
	Name string `db:"name,pk"`
}

func (firstCaseTag) TableName() string { return "first_case_tags" }

// firstCaseOf is firstCaseModel of T, after T's model is in modelAt's
// cache (as Get's general path puts it there).
func firstCaseOf[T any](t *testing.T) (got, want *model) {
	t.Helper()
	want, err := mappedModelOf[T]("test")
	if err != nil {
		t.Fatal(err)
	}
	return firstCaseModel(ptrWordOf[T]()), want
}

// TestFirstCaseModels: firstCaseModel keeps the first eight integer-keyed
// types it sees by place, returns every type's model (the ninth too, and
// a string-keyed one, neither kept), and Model puts a type's new model in
// its old one's place.
func TestFirstCaseModels(t *testing.T) {
	saved := make([]*model, len(firstCaseModels))
	for i := range firstCaseModels {
		saved[i] = firstCaseModels[i].Swap(nil)
	}
	t.Cleanup(func() {
		for i := range firstCaseModels {
			firstCaseModels[i].Store(saved[i])
		}
	})
	kept := func() (n int) {
		for i := range firstCaseModels {
			if firstCaseModels[i].Load() != nil {
				n++
			}
		}
		return n
	}
	checks := []func(*testing.T) (*model, *model){
		firstCaseOf[firstCaseRow[[0]int]], firstCaseOf[firstCaseRow[[1]int]],
		firstCaseOf[firstCaseRow[[2]int]], firstCaseOf[firstCaseRow[[3]int]],
		firstCaseOf[firstCaseRow[[4]int]], firstCaseOf[firstCaseRow[[5]int]],
		firstCaseOf[firstCaseRow[[6]int]], firstCaseOf[firstCaseRow[[7]int]],
		firstCaseOf[firstCaseRow[[8]int]],
	}
	for i, check := range checks {
		for range 2 {
			if got, want := check(t); got != want {
				t.Fatalf("type %d: firstCaseModel gave %p, want %p", i, got, want)
			}
		}
		if n, want := kept(), min(i+1, len(firstCaseModels)); n != want {
			t.Fatalf("after type %d: %d models kept, want %d", i, n, want)
		}
		if i < len(firstCaseModels) && firstCaseModels[i].Load() == nil {
			t.Fatalf("type %d is not in place %d", i, i)
		}
	}
	for i := range firstCaseModels { // room for the string-keyed type
		firstCaseModels[i].Store(nil)
	}
	if got, want := firstCaseOf[firstCaseTag](t); got != want || kept() != 0 {
		t.Fatalf("string-keyed type: got %p (want %p), %d kept (want 0)", got, want, kept())
	}

	old, _ := firstCaseOf[firstCaseRow[[0]int]](t)
	Model[firstCaseRow[[0]int]](Table("first_case_rows_b"))
	got, want := firstCaseOf[firstCaseRow[[0]int]](t)
	if got != want || got == old || got.table != "first_case_rows_b" {
		t.Fatalf("after Model: firstCaseModel gave %p (table %q), want %p, not the old %p", got, got.table, want, old)
	}
	if firstCaseModels[0].Load() != want {
		t.Fatal("Model did not put the new model in the old one's place")
	}
}
