-- API keys (edge/keys/repository.py). key_prefix is the public key id sent inside the key; key_hash is
-- the hex SHA-256 of the whole key, never the key itself. The CHECKs back up the validation in
-- edge/keys/model.py.
--
-- IF NOT EXISTS: databases set up before the edge had its own migrations got this same table from the
-- demo's Hasura migration (1795290000400_edge_schema); upgrading adopts it as it is.

CREATE TABLE IF NOT EXISTS edge.api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  key_prefix text NOT NULL,
  key_hash text NOT NULL,
  owner text NOT NULL,
  plan text NOT NULL,
  role text NOT NULL DEFAULT 'user',
  session_variables jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_rotated_at timestamptz,
  CONSTRAINT api_keys_key_prefix_key UNIQUE (key_prefix),
  CONSTRAINT api_keys_key_prefix_format CHECK (key_prefix ~ '^[A-Za-z0-9_-]{4,64}$'),
  CONSTRAINT api_keys_key_hash_not_blank CHECK (key_hash <> ''),
  CONSTRAINT api_keys_role_not_admin CHECK (role <> '' AND lower(role) <> 'admin'),
  CONSTRAINT api_keys_session_variables_object CHECK (jsonb_typeof(session_variables) = 'object')
);
