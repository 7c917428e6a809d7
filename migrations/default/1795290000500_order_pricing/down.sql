DROP TRIGGER order_items_refresh_order_total ON public.order_items;
DROP TRIGGER order_items_fill_unit_price ON public.order_items;
DROP FUNCTION public.order_items_refresh_order_total();
DROP FUNCTION public.order_items_fill_unit_price();
