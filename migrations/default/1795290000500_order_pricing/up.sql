-- Prices come from the catalog, never from the client: an order item inserted without unit_price
-- (users cannot set it through Hasura) takes the product's price, and orders.total always equals
-- the sum of its items. Items must be in the order's currency.

CREATE FUNCTION public.order_items_fill_unit_price()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  product_price numeric(12, 2);
  product_currency char(3);
  order_currency char(3);
BEGIN
  SELECT p.price, p.currency INTO product_price, product_currency
  FROM public.products p WHERE p.id = NEW.product_id;
  SELECT o.currency INTO order_currency FROM public.orders o WHERE o.id = NEW.order_id;
  IF product_currency IS DISTINCT FROM order_currency THEN
    RAISE EXCEPTION 'product % is priced in %, the order is in %', NEW.product_id, product_currency, order_currency
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.unit_price IS NULL THEN
    NEW.unit_price := product_price;
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER order_items_fill_unit_price
BEFORE INSERT OR UPDATE OF product_id, order_id ON public.order_items
FOR EACH ROW EXECUTE FUNCTION public.order_items_fill_unit_price();

CREATE FUNCTION public.order_items_refresh_order_total()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE public.orders o
    SET total = COALESCE((SELECT sum(i.quantity * i.unit_price) FROM public.order_items i WHERE i.order_id = o.id), 0)
    WHERE o.id = OLD.order_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE public.orders o
    SET total = COALESCE((SELECT sum(i.quantity * i.unit_price) FROM public.order_items i WHERE i.order_id = o.id), 0)
    WHERE o.id = NEW.order_id;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER order_items_refresh_order_total
AFTER INSERT OR UPDATE OR DELETE ON public.order_items
FOR EACH ROW EXECUTE FUNCTION public.order_items_refresh_order_total();
