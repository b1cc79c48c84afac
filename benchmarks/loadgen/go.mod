module featurestore.local/benchmarks/loadgen

go 1.19
