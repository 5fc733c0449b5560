package classify_test

import (
	"fmt"

	"github.com/go-idmap/idmap/classify"
)

func ExampleClassify() {
	s := classify.Classify(classify.Postgres,
		"UPDATE users u SET name = $2 WHERE u.id = $1 RETURNING u.id")
	w := s.Writes[0]
	fmt.Println(w.Op, w.Table, w.Where[0].Columns, w.Where[0].Values[0][0].Arg, w.Returning)
	fmt.Println(classify.Classify(classify.MySQL, "CALL refresh()").WholeDB)
	// Output:
	// update users [id] 1 true
	// true
}
