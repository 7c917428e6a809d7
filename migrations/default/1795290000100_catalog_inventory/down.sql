DROP TABLE public.low_stock_alerts;
DROP TABLE public.inventory;
DROP TABLE public.warehouses;
DROP TABLE public.products;
