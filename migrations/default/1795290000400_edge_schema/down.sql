DROP TABLE edge.api_keys;
DROP SCHEMA edge;
