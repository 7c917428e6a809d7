-- Catalog (products, warehouses), stock levels and the low-stock alerts written by the
-- inventory_low_stock event trigger handler (deduplicated on the Hasura event id).

CREATE TABLE public.products (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  sku text NOT NULL,
  name text NOT NULL,
  description text,
  price numeric(12, 2) NOT NULL,
  currency char(3) NOT NULL DEFAULT 'USD',
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT products_sku_key UNIQUE (sku),
  CONSTRAINT products_price_non_negative CHECK (price >= 0),
  CONSTRAINT products_currency_iso4217 CHECK (currency ~ '^[A-Z]{3}$')
);
CREATE INDEX products_name_idx ON public.products (name);

CREATE TABLE public.warehouses (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  code text NOT NULL,
  name text NOT NULL,
  city text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT warehouses_code_key UNIQUE (code)
);

CREATE TABLE public.inventory (
  warehouse_id uuid NOT NULL REFERENCES public.warehouses (id) ON DELETE CASCADE,
  product_id uuid NOT NULL REFERENCES public.products (id) ON DELETE CASCADE,
  quantity integer NOT NULL DEFAULT 0,
  low_stock_threshold integer NOT NULL DEFAULT 10,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT inventory_pkey PRIMARY KEY (warehouse_id, product_id),
  CONSTRAINT inventory_quantity_non_negative CHECK (quantity >= 0),
  CONSTRAINT inventory_low_stock_threshold_non_negative CHECK (low_stock_threshold >= 0)
);
-- The primary key serves lookups by warehouse; this one serves products.inventory.
CREATE INDEX inventory_product_id_idx ON public.inventory (product_id);

CREATE TRIGGER set_public_inventory_updated_at
BEFORE UPDATE ON public.inventory
FOR EACH ROW EXECUTE FUNCTION public.set_current_timestamp_updated_at();

CREATE TABLE public.low_stock_alerts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  product_id uuid NOT NULL REFERENCES public.products (id) ON DELETE CASCADE,
  warehouse_id uuid NOT NULL REFERENCES public.warehouses (id) ON DELETE CASCADE,
  quantity integer NOT NULL,
  threshold integer NOT NULL,
  event_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT low_stock_alerts_event_id_key UNIQUE (event_id)
);
CREATE INDEX low_stock_alerts_product_warehouse_idx ON public.low_stock_alerts (product_id, warehouse_id);
CREATE INDEX low_stock_alerts_warehouse_id_idx ON public.low_stock_alerts (warehouse_id);
