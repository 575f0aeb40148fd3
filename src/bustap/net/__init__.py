"""Connection code shared by sources and sinks (one MQTT client, one place
for TLS and NATS connect options), so that a source and a sink of the same
protocol are configured the same way."""
