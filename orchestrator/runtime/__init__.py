"""The imperative shell: Kafka, Faust tables, HTTP and metrics around the pure core."""
