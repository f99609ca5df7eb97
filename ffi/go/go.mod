module example.invalid/pdipam

go 1.19
