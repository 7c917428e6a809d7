DROP TABLE public.order_confirmations;
DROP TABLE public.payment_idempotency;
DROP TABLE public.payments;
DROP TABLE public.order_items;
DROP TABLE public.orders;
