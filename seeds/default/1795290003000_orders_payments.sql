-- Alice has an order awaiting payment (pay it with processPayment: 148.00 USD).
-- Bob has an order that is already paid, with its approved payment.
--
-- Hasura's event triggers are ordinary Postgres triggers (AFTER INSERT ... FOR EACH ROW, created by
-- mkTrigger in server/src-lib/Hasura/Backends/Postgres/DDL/EventTrigger.hs), so rows inserted here would
-- fire order_created like any order: on first boot the actions service would confirm the demo orders.
-- Hasura leaves its triggers out of replica sessions unless an event trigger sets trigger_on_replication
-- (false by default for Postgres), so the orders are inserted with session_replication_role = replica,
-- for this one statement and this transaction only. Only a superuser may set that; anyone else seeds
-- with the events, which the order_created handler accepts like any other (actions/README.md).
-- Replica mode also skips the orders -> users foreign-key check for this statement: the users come from
-- the previous seed file, and tests/demo/test_seed_events.py checks them.
DO $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
  END IF;
END
$$;

INSERT INTO public.orders (id, user_id, status, total, currency, created_at, updated_at) VALUES
  ('cccccccc-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'awaiting_payment', 148.00, 'USD',
   '2026-02-01T12:00:00Z', '2026-02-01T12:00:00Z'),
  ('cccccccc-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222', 'paid', 279.00, 'USD',
   '2026-02-02T12:00:00Z', '2026-02-02T12:05:00Z')
ON CONFLICT DO NOTHING;

DO $$
BEGIN
  IF pg_catalog.current_setting('session_replication_role') = 'replica' THEN
    PERFORM pg_catalog.set_config('session_replication_role', 'origin', true);
  END IF;
END
$$;

INSERT INTO public.order_items (id, order_id, product_id, quantity, unit_price) VALUES
  ('cccccccc-1111-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000001', 1, 89.00),
  ('cccccccc-1111-4000-8000-000000000002', 'cccccccc-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002', 2, 29.50),
  ('cccccccc-1111-4000-8000-000000000003', 'cccccccc-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000003', 1, 279.00)
ON CONFLICT DO NOTHING;

INSERT INTO public.payments (id, order_id, user_id, amount, currency, status, provider, provider_reference, idempotency_key, created_at) VALUES
  ('cccccccc-2222-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222',
   279.00, 'USD', 'approved', 'seed', 'seed_charge_0001', 'seed-bob-order-2', '2026-02-02T12:05:00Z')
ON CONFLICT DO NOTHING;
