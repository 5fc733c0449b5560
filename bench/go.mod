module github.com/go-idmap/idmap/bench

go 1.26.0

replace github.com/go-idmap/idmap => ../
