-- Products, two warehouses and stock levels. Some rows sit at or just above their low-stock threshold,
-- so a small quantity update fires the inventory_low_stock event trigger with something to report.
INSERT INTO public.products (id, sku, name, description, price, currency, created_at) VALUES
  ('aaaaaaaa-0000-4000-8000-000000000001', 'KB-001', 'Mechanical Keyboard', 'Tenkeyless, hot-swappable switches.', 89.00, 'USD', '2026-01-10T10:00:00Z'),
  ('aaaaaaaa-0000-4000-8000-000000000002', 'MS-001', 'Wireless Mouse', 'Ergonomic, 2.4 GHz and Bluetooth.', 29.50, 'USD', '2026-01-10T10:00:00Z'),
  ('aaaaaaaa-0000-4000-8000-000000000003', 'MN-027', '27-inch Monitor', '2560x1440 IPS, 144 Hz.', 279.00, 'USD', '2026-01-10T10:00:00Z'),
  ('aaaaaaaa-0000-4000-8000-000000000004', 'HP-001', 'Noise-Cancelling Headphones', 'Over-ear, 30 h battery.', 199.99, 'USD', '2026-01-10T10:00:00Z'),
  ('aaaaaaaa-0000-4000-8000-000000000005', 'CB-USBC', 'USB-C Cable', '2 m, 100 W.', 9.99, 'USD', '2026-01-10T10:00:00Z'),
  ('aaaaaaaa-0000-4000-8000-000000000006', 'DK-001', 'Laptop Dock', 'USB-C dock with two display outputs.', 149.00, 'USD', '2026-01-10T10:00:00Z'),
  ('aaaaaaaa-0000-4000-8000-000000000007', 'WC-1080', '1080p Webcam', 'Autofocus, stereo microphones.', 59.00, 'USD', '2026-01-10T10:00:00Z'),
  ('aaaaaaaa-0000-4000-8000-000000000008', 'SSD-512', '512 GB SSD', 'NVMe M.2 2280.', 64.90, 'USD', '2026-01-10T10:00:00Z')
ON CONFLICT DO NOTHING;

INSERT INTO public.warehouses (id, code, name, city, created_at) VALUES
  ('bbbbbbbb-0000-4000-8000-000000000001', 'WH-BER', 'Berlin Central', 'Berlin', '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'WH-NYC', 'New York East', 'New York', '2026-01-10T10:00:00Z')
ON CONFLICT DO NOTHING;

INSERT INTO public.inventory (warehouse_id, product_id, quantity, low_stock_threshold, updated_at) VALUES
  ('bbbbbbbb-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000001', 42, 10, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002', 120, 20, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000003', 6, 5, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000004', 15, 5, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000005', 500, 50, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000006', 11, 10, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000001', 3, 5, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000002', 60, 20, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000003', 25, 5, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000007', 0, 5, '2026-01-10T10:00:00Z'),
  ('bbbbbbbb-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000008', 21, 20, '2026-01-10T10:00:00Z')
ON CONFLICT DO NOTHING;
