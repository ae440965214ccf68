"""The load benchmark: the gateway and its peers behind wrk, on loopback, pinned with taskset."""
