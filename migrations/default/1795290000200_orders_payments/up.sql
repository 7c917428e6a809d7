-- Orders, their items, payments, the idempotency store behind the processPayment action, and the
-- confirmations written by the order_created event trigger handler (deduplicated on the event id).

CREATE TABLE public.orders (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES public.users (id) ON DELETE RESTRICT,
  status text NOT NULL DEFAULT 'pending',
  total numeric(12, 2) NOT NULL DEFAULT 0,
  currency char(3) NOT NULL DEFAULT 'USD',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'awaiting_payment', 'paid', 'cancelled', 'payment_failed')),
  CONSTRAINT orders_total_non_negative CHECK (total >= 0),
  CONSTRAINT orders_currency_iso4217 CHECK (currency ~ '^[A-Z]{3}$')
);
CREATE INDEX orders_user_id_idx ON public.orders (user_id);
CREATE INDEX orders_status_idx ON public.orders (status);

CREATE TRIGGER set_public_orders_updated_at
BEFORE UPDATE ON public.orders
FOR EACH ROW EXECUTE FUNCTION public.set_current_timestamp_updated_at();

CREATE TABLE public.order_items (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  order_id uuid NOT NULL REFERENCES public.orders (id) ON DELETE CASCADE,
  product_id uuid NOT NULL REFERENCES public.products (id) ON DELETE RESTRICT,
  quantity integer NOT NULL,
  unit_price numeric(12, 2) NOT NULL,
  CONSTRAINT order_items_order_product_key UNIQUE (order_id, product_id),
  CONSTRAINT order_items_quantity_positive CHECK (quantity > 0),
  CONSTRAINT order_items_unit_price_non_negative CHECK (unit_price >= 0)
);
CREATE INDEX order_items_product_id_idx ON public.order_items (product_id);

CREATE TABLE public.payments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  order_id uuid NOT NULL REFERENCES public.orders (id) ON DELETE RESTRICT,
  user_id uuid NOT NULL REFERENCES public.users (id) ON DELETE RESTRICT,
  amount numeric(12, 2) NOT NULL,
  currency char(3) NOT NULL,
  status text NOT NULL,
  provider text NOT NULL,
  provider_reference text,
  idempotency_key text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payments_amount_positive CHECK (amount > 0),
  CONSTRAINT payments_currency_iso4217 CHECK (currency ~ '^[A-Z]{3}$'),
  CONSTRAINT payments_status_check CHECK (status IN ('approved', 'declined', 'failed'))
);
CREATE INDEX payments_order_id_idx ON public.payments (order_id);
CREATE INDEX payments_user_id_idx ON public.payments (user_id);
-- One charge per (user, idempotency key), and never two approved payments for one order.
CREATE UNIQUE INDEX payments_user_idempotency_key_idx
  ON public.payments (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX payments_one_approved_per_order_idx
  ON public.payments (order_id) WHERE status = 'approved';

-- Stripe-style idempotency for processPayment (security.md section 4). The key is scoped to the
-- user; request_fingerprint is a hash of the canonical action input minus the key.
CREATE TABLE public.payment_idempotency (
  user_id uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
  idempotency_key text NOT NULL,
  request_fingerprint text NOT NULL,
  state text NOT NULL DEFAULT 'in_progress',
  response_status integer,
  response_body jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payment_idempotency_pkey PRIMARY KEY (user_id, idempotency_key),
  CONSTRAINT payment_idempotency_key_length CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
  CONSTRAINT payment_idempotency_state_check CHECK (state IN ('in_progress', 'completed')),
  CONSTRAINT payment_idempotency_completed_has_response
    CHECK (state <> 'completed' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);
-- Rows may be pruned once they are at least 24 hours old.
CREATE INDEX payment_idempotency_created_at_idx ON public.payment_idempotency (created_at);

CREATE TRIGGER set_public_payment_idempotency_updated_at
BEFORE UPDATE ON public.payment_idempotency
FOR EACH ROW EXECUTE FUNCTION public.set_current_timestamp_updated_at();

CREATE TABLE public.order_confirmations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  order_id uuid NOT NULL REFERENCES public.orders (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
  total numeric(12, 2) NOT NULL,
  currency char(3) NOT NULL,
  event_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT order_confirmations_event_id_key UNIQUE (event_id)
);
CREATE INDEX order_confirmations_order_id_idx ON public.order_confirmations (order_id);
CREATE INDEX order_confirmations_user_id_idx ON public.order_confirmations (user_id);
