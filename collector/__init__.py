"""The edge agent (connectors, pseudonymisation, durable outbox, MQTT publisher): not built yet."""
