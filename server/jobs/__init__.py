"""Jobs: records in Redis, messages on RabbitMQ, the work done by the worker."""
